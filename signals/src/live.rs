//! Live dumps: every G's stack, in the crash dump's format, while the
//! program keeps running (Go's `runtime.Stack(buf, true)`, pprof's
//! goroutine profile at `debug=2`).
//!
//! [`dump_fd`] writes through the crash dump's own code (`dump::gs`, the
//! same headers, frames, grouping and module list), so the two formats
//! cannot drift apart:
//!
//! - a parked or runnable G is walked from its saved context, as in a
//!   crash; nothing stops it (a G that resumes meanwhile only makes the
//!   bounds-checked walk read stale words);
//! - a G running on an M (or in a syscall there) is walked by that M
//!   itself: the dumper sends the M's thread [`LIVE_SIGNAL`] with
//!   `tgkill`, and the M's handler walks the interrupted context into a
//!   shared slot. That M is paused for the length of one stack walk (a few
//!   microseconds); no other thread is paused at all. An M that does not
//!   answer within [`ANSWER_NS`] (its thread has signals blocked, or it is
//!   stuck in the kernel) is printed with the "running on another M" note.
//!
//! Dumps are serialised by a lock taken by the dumper (ordinary code),
//! never by the handler. The handler side ([`on_signal`]) is reached from
//! the crash handler's entry (the same stack-realigning trampoline) and is
//! async-signal-safe: atomics, the bounds-checked unwinder, no allocation.
//!
//! SIGURG is the signal, as Go's preemption uses: it is harmless if it
//! arrives anywhere else (its default action is to ignore), and
//! `runtime::signal` refuses it to programs.

use crate::dump::{self, Frames};
use crate::level::{Level, level};
use crate::unwind::Regs;
use crate::write::Out;
use arch::sigctx::SigCtx;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use scheduler::lock_rank::{Rank, RankedMutex};
use std::io;
use std::os::fd::AsRawFd;

/// The signal that asks an M for its running G's stack.
pub const LIVE_SIGNAL: i32 = libc::SIGURG;
/// How long the dumper waits for an M to answer.
pub const ANSWER_NS: u64 = 100_000_000;

const IDLE: u8 = 0;
const ASKED: u8 = 1;
const DONE: u8 = 2;
/// The M was not running the G asked for any more.
const MOVED: u8 = 3;

/// The request: which G, and the state of the slot.
static WANT_GOID: AtomicU64 = AtomicU64::new(0);
static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// How long the last answering handler ran (its thread's pause), in ns.
static PAUSE_NS: AtomicU64 = AtomicU64::new(0);

/// The frames the answering handler wrote.
///
/// # Safety
///
/// Written only by the handler that moves [`STATE`] from `ASKED` to `DONE`
/// (one at a time: it takes `ASKED` with a compare-exchange); read only by
/// the dumper after it saw `DONE` (Acquire), before it asks again.
struct Slot(UnsafeCell<Frames>);
// SAFETY: see the static's invariant: one writer, then one reader, ordered
// by `STATE`.
unsafe impl Sync for Slot {}
static SLOT: Slot = Slot(UnsafeCell::new(Frames::new()));

/// One live dump at a time.
static DUMPING: RankedMutex<()> = RankedMutex::new(Rank::LiveDump, ());

/// The handler side: if this M runs the G asked for, walk it into the slot.
pub(crate) fn on_signal(ctx: &SigCtx) {
    if STATE
        .compare_exchange(ASKED, ASKED + 10, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        // A late answer to a request already given up, or a stray SIGURG.
        return;
    }
    let t0 = crate::clock::now_ns(libc::CLOCK_MONOTONIC);
    let m = scheduler::m::current_m();
    let g = m.and_then(|m| m.curg());
    let outcome = match (m, g) {
        (Some(m), Some(g)) if g.goid() == WANT_GOID.load(Ordering::Relaxed) => {
            let regs = Regs {
                pc: ctx.pc(),
                sp: ctx.sp(),
                fp: ctx.fp(),
                lr: ctx.lr(),
            };
            // SAFETY: we moved STATE out of ASKED, so the slot is ours
            // until we publish DONE (the static's invariant).
            let f = unsafe { &mut *SLOT.0.get() };
            crate::interrupted::capture_running(f, regs, g, Some(m), ctx.sp());
            DONE
        }
        _ => MOVED,
    };
    PAUSE_NS.store(
        crate::clock::now_ns(libc::CLOCK_MONOTONIC).saturating_sub(t0),
        Ordering::Relaxed,
    );
    STATE.store(outcome, Ordering::Release);
}

/// Asks the M running `g` for its stack; true with `f` filled if it
/// answered in time. Adds the M's pause to `stats`.
fn ask(g: &'static scheduler::g::G, f: &mut Frames, stats: &mut DumpStats) -> bool {
    let Some(m) = scheduler::m::ALLMS
        .iter()
        .find(|m| m.curg().is_some_and(|c| core::ptr::eq(c.0, g)))
    else {
        return false;
    };
    let tid = m.tid();
    if tid <= 0 {
        return false;
    }
    WANT_GOID.store(g.goid(), Ordering::Relaxed);
    STATE.store(ASKED, Ordering::Release);
    // SAFETY: tgkill with our pid and a thread id the registry holds; the
    // signal's handler is installed, and a stale tid at worst reaches no
    // thread (an error) or a thread that ignores the late request.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, LIVE_SIGNAL) } == 0;
    let start = std::time::Instant::now();
    let answered = sent
        && loop {
            match STATE.load(Ordering::Acquire) {
                DONE => break true,
                MOVED => break false,
                _ if start.elapsed().as_nanos() as u64 > ANSWER_NS => break false,
                _ => std::thread::yield_now(),
            }
        };
    // Give up the request; a handler that is walking right now (ASKED+10)
    // finishes into the slot, which we wait for before reusing it.
    if STATE
        .compare_exchange(ASKED, IDLE, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        while STATE.load(Ordering::Acquire) == ASKED + 10 {
            std::thread::yield_now();
        }
    }
    let ok = answered && STATE.load(Ordering::Acquire) == DONE;
    if ok {
        let p = PAUSE_NS.load(Ordering::Relaxed);
        stats.pause_ns_max = stats.pause_ns_max.max(p);
        stats.pause_ns_total += p;
        // SAFETY: DONE was published with Release by the only writer and
        // seen with Acquire; no request is outstanding.
        *f = unsafe { core::ptr::read(SLOT.0.get()) };
    }
    STATE.store(IDLE, Ordering::Release);
    ok
}

/// How a live dump went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpStats {
    /// Running Gs whose M was asked for its stack.
    pub asked: usize,
    /// Of those, the ones that answered in time.
    pub answered: usize,
    /// The longest any one thread was stopped (an M walking its own G in
    /// the handler), in nanoseconds. Parked Gs are not stopped at all.
    pub pause_ns_max: u64,
    /// All the handlers' time, added up.
    pub pause_ns_total: u64,
}

/// Whether `fd` is an open descriptor opened for writing.
pub fn writable_fd(fd: i32) -> bool {
    // SAFETY: F_GETFL on any integer: an error for a closed descriptor.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && matches!(fl & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR)
}

/// Writes every G's stack to `fd` in the crash dump's format (see the
/// module docs), followed by the module list. Runtime frames are hidden
/// unless `GORT_TRACEBACK=system` or higher.
pub fn dump_fd(fd: i32) -> DumpStats {
    crate::init();
    let _one = DUMPING.lock();
    let system = level() >= Level::System;
    let coarse = crate::clock::now_ns(libc::CLOCK_MONOTONIC_COARSE);
    let mut stats = DumpStats::default();
    // Pass 1 as in a crash: parked Gs grouped from their saved contexts.
    let groups = Box::new(dump::Groups::collect(None, system));
    // Running Gs: each from its own M.
    let mut running: Vec<(usize, Box<Frames>)> = Vec::new();
    for &gi in groups.running() {
        let Some(g) = scheduler::g::ALLGS.get(gi) else {
            continue;
        };
        stats.asked += 1;
        let mut f = Box::new(Frames::new());
        if ask(g, &mut f, &mut stats) {
            stats.answered += 1;
            running.push((gi, f));
        }
    }
    // file:line for everything printed, in one request.
    let answer = crate::resolve::Request::begin().and_then(|mut req| {
        groups.add_to(&mut req);
        for (_, f) in &running {
            f.add_to(&mut req);
        }
        req.send(crate::resolve::WAIT_NS)
    });
    let style = dump::Style { system, answer };
    let mut o = Out::new(fd);
    groups.print_with(&mut o, style, coarse, &mut |gi| {
        running.iter().find(|(i, _)| *i == gi).map(|(_, f)| &**f)
    });
    dump::module_list(&mut o);
    o.flush();
    stats
}

/// [`dump_fd`] into any writer: the dump goes to an anonymous memory file
/// (`memfd_create`) first, then is copied.
pub fn dump(w: &mut dyn io::Write) -> io::Result<DumpStats> {
    // SAFETY: memfd_create with a static C string; a new descriptor.
    let fd = unsafe { libc::memfd_create(c"gort-dump".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nobody else owns.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let stats = dump_fd(file.as_raw_fd());
    io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
    io::copy(&mut file, w)?;
    Ok(stats)
}
