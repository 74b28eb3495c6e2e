//! The crash relay (`GORT_TRACEBACK=crash`): every M that owns a thread
//! prints its own stack, then the crasher aborts.
//!
//! The M that took the fatal signal (the *crasher*) prints the full dump,
//! then asks every runtime M that owns an OS thread to dump its own stack
//! ([`run`]): it marks each M's [`RelayState`] `Asked` and sends SIGQUIT to
//! that thread with `tgkill` (never to the process, so it cannot land on a
//! plain C thread; never to an extra M on the pool's list, which has no
//! thread). Each asked M prints its section under a section lock (waiting
//! Ms sleep on it, a futex), so sections never interleave, and marks itself
//! `Dumped` ([`answer_if_asked`]). The crasher waits until `crashing` (Ms
//! that dumped) reaches `mcount − extra_m_count` read under the extra-list
//! lock — the accounting of Go's 2015/2017 fix — or every asked M has
//! answered. A watchdog ends the wait for an M that does not answer (its
//! signals masked, or stuck) 5 s after the last progress, and names every M
//! that stayed silent with its thread id. Then the crasher aborts with
//! SIGABRT, so its thread is thread 1 in the core.
//!
//! Rejected: asking one M at a time, as Go's process-directed relay must.
//! A signal sent to a thread is handled when that thread next runs; with
//! more busy threads than cores that is a scheduler time slice away, and
//! one at a time those waits add up (tens of ms for 8 Ms on 2 cores, where
//! asking all at once costs the longest single wait).
//!
//! Two more cases keep the count exact. A process-directed SIGQUIT that the
//! kernel hands to a thread without an M (the main thread, a plain C
//! thread) is forwarded to one runtime M ([`forward_quit`]), which then
//! acts as the crasher, so such threads never print. An M that faults while
//! another thread is already dumping sits in its handler with SIGQUIT
//! blocked; it answers the `Asked` mark by polling it, with its own signal
//! context, instead of making the crasher wait for the watchdog.
//!
//! # Where it sits
//!
//! The dispatch ([`crate::handler`]) calls in; this module calls the
//! helpers below it (the interrupted stack, the dump, the symbolizer) and
//! ends in [`crate::exit`]. Async-signal-safe: the section lock is taken
//! only by handler threads with their signals blocked.

use crate::clock::{self, now_ns};
use crate::dump::{self, Frames, Style};
use crate::exit;
use crate::interrupted;
use crate::level::{Level, level};
use crate::per_m::{self, PerM, RelayState};
use crate::resolve;
use crate::write::Out;
use arch::sigctx::SigCtx;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use scheduler::extram;
use scheduler::g::GStatus;
use scheduler::m::{ALLMS, M, MStatus};

/// Ms that have dumped in this crash (the crasher included).
static CRASHING: AtomicU32 = AtomicU32::new(0);
/// Set while the crasher relays SIGQUIT.
static RELAYING: AtomicBool = AtomicBool::new(false);
/// How long the relay waits for an M without progress.
const RELAY_WATCHDOG_NS: u64 = 5_000_000_000;
/// How often the crasher looks whether the asked M has dumped.
const RELAY_POLL_NS: u64 = 50_000;

/// Whether a relay is under way: a SIGQUIT now is the relay's (or a
/// second one), not a request for a dump.
pub(crate) fn relaying() -> bool {
    RELAYING.load(Ordering::Acquire)
}

/// The crash relay (see the module docs), then SIGABRT.
pub(crate) fn run(me: Option<&'static M>) -> ! {
    ask(me);
    wait_then_abort()
}

/// The relay's first half: counts the crasher as dumped and asks every
/// other M that owns a thread (see the module docs).
///
/// Rejected: asking before the crasher's own dump, so that busy Ms stop
/// (as Go freezes the world) instead of taking the CPUs from the crasher
/// and the symbolizer thread. An M stopped inside `malloc` would then hold
/// its arena's lock for good, and the symbolizer thread, which allocates,
/// could block on it until the dump gives up on `file:line`; measured on a
/// loaded machine, it did not make the crash faster either.
fn ask(me: Option<&'static M>) {
    // Only Ms count: a crasher without an M (a plain thread that took a
    // process-directed signal) must still relay to every threaded M.
    if let Some(me) = me {
        CRASHING.fetch_add(1, Ordering::AcqRel);
        if let Some(per) = per_m::of(me) {
            per.relay.store(RelayState::Dumped, Ordering::Release);
        }
    }
    if scheduler::fork::in_forked_child() {
        // The other Ms' threads stayed in the parent: nobody to ask.
        return;
    }
    RELAYING.store(true, Ordering::Release);
    // SAFETY: getpid is async-signal-safe.
    let pid = unsafe { libc::getpid() };
    // Ask every M that owns a thread and has not dumped, all at once: each
    // waits for its signal to be delivered, which on a loaded machine means
    // waiting for a time slice, so asking one at a time would add those
    // waits up. The section lock keeps their output apart.
    for m in ALLMS.iter() {
        if me.is_some_and(|me| core::ptr::eq(me, m))
            || !matches!(m.status(), MStatus::Running | MStatus::Idle)
        {
            continue;
        }
        let tid = m.tid();
        let Some(per) = per_m::of(m) else { continue };
        if tid == 0 || per.relay.load(Ordering::Acquire) != RelayState::Idle {
            continue;
        }
        per.relay.store(RelayState::Asked, Ordering::Release);
        // SAFETY: tgkill to a thread of our own process.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGQUIT) };
    }
}

/// Whether `m` was asked and has not answered yet.
fn asked(m: &M) -> bool {
    per_m::of(m).is_some_and(|p| p.relay.load(Ordering::Acquire) == RelayState::Asked)
}

/// The relay's second half: waits for the asked Ms' sections (watchdog
/// included), then aborts.
fn wait_then_abort() -> ! {
    if scheduler::fork::in_forked_child() {
        exit::abort();
    }
    // Wait until `crashing` reaches the Ms that own a thread (the seed's
    // accounting: the pooled extra Ms have none and are never waited for),
    // or every asked M has answered; the watchdog restarts on each answer.
    let mut seen = CRASHING.load(Ordering::Acquire);
    let mut last_progress = now_ns(libc::CLOCK_MONOTONIC);
    loop {
        let (mcount, extra) = extram::counts_consistent();
        let crashing = CRASHING.load(Ordering::Acquire);
        let Some(waiting) = ALLMS.iter().find(|m| asked(m)) else {
            break;
        };
        if crashing as usize >= mcount.saturating_sub(extra) {
            break;
        }
        let now = now_ns(libc::CLOCK_MONOTONIC);
        if crashing != seen {
            seen = crashing;
            last_progress = now;
        } else if now - last_progress > RELAY_WATCHDOG_NS {
            report_silent_ms(waiting);
            exit::abort();
        }
        // A fine poll: a relayed M dumps in well under a millisecond, and
        // each wait adds to the time a crash takes.
        clock::sleep_ns(RELAY_POLL_NS);
    }
    exit::abort()
}

/// The watchdog fired: names every M that was asked and never answered
/// (its signals masked, e.g. a foreign thread that blocked all signals
/// after binding, or stuck with them blocked), one line each with its
/// thread id, then how many. `first` is one of them.
fn report_silent_ms(first: &'static M) {
    let mut o = Out::stderr();
    let mut silent = 0u64;
    for m in ALLMS.iter() {
        if !asked(m) && !core::ptr::eq(m, first) {
            continue;
        }
        silent += 1;
        o.str("gort: m=")
            .dec(m.id as u64)
            .str(" tid=")
            .dec(m.tid() as u64)
            .str(if m.extra { " (a foreign thread)" } else { "" })
            .str(" did not answer the crash relay within 5 s")
            .nl();
    }
    o.str("gort: aborting without the stacks of ")
        .dec(silent)
        .str(if silent == 1 { " M" } else { " Ms" })
        .nl();
}

/// Held while a relayed M prints its section, so sections never
/// interleave. Only handler threads take it, with their signals blocked.
static SECTION_LOCK: AtomicU32 = AtomicU32::new(0);

/// Takes [`SECTION_LOCK`], sleeping on it (a futex) while another thread
/// prints: a hundred Ms waiting must not keep the CPUs busy while the
/// crasher's dump and the symbolizer thread need them.
fn lock_sections() {
    while SECTION_LOCK
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        // SAFETY: a private futex wait on a live atomic with a relative
        // timeout (a missed wake costs 10 ms, never a hang).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                SECTION_LOCK.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                1u32,
                &ts as *const libc::timespec,
            )
        };
    }
}

fn unlock_sections() {
    SECTION_LOCK.store(0, Ordering::Release);
    // SAFETY: a private futex wake on a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            SECTION_LOCK.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// Hands a process-directed SIGQUIT that reached a thread without an M to
/// one runtime M that owns a thread (`tgkill`), which then prints the dump
/// as if the kernel had picked it. Returns false when no M took it (none
/// has a thread yet): the caller handles the signal itself.
///
/// The kernel delivers a process-directed signal to any thread that does
/// not block it, plain C threads included. Forwarding keeps such threads
/// out of the dump (a C thread sitting in `pause()` is not even interrupted
/// for longer than this call), and makes the crasher an M, so in crash mode
/// the dump has exactly one section per M that owns a thread.
pub(crate) fn forward_quit() -> bool {
    // SAFETY: getpid is async-signal-safe.
    let pid = unsafe { libc::getpid() };
    // Runtime Ms first; an extra M bound to a C thread only if nothing else.
    for extra in [false, true] {
        for m in ALLMS.iter() {
            if m.extra != extra || !matches!(m.status(), MStatus::Running | MStatus::Idle) {
                continue;
            }
            let tid = m.tid();
            if tid == 0 {
                continue;
            }
            // SAFETY: tgkill to a thread of our own process.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGQUIT) } == 0 {
                return true;
            }
        }
    }
    false
}

/// If a relay is under way and it asked `m` (this thread's M): prints
/// `m`'s section and never returns (see [`answer`]). Otherwise returns.
/// `name` is the signal's name for the section's first line: SIGQUIT's, or
/// this M's own fatal signal when it lost the race to dump.
pub(crate) fn answer_if_asked(m: Option<&'static M>, ctx: &SigCtx, name: &str) {
    if let Some(m) = m
        && let Some(per) = per_m::of(m)
        && relaying()
        && per.relay.load(Ordering::Acquire) == RelayState::Asked
    {
        answer(m, per, ctx, name);
    }
}

/// An asked M's section: print its current G (or its own stack) once,
/// then wait for the crasher to end the process.
fn answer(m: &'static M, per: &PerM, ctx: &SigCtx, name: &str) -> ! {
    // Running, or asleep in the kernel (`syscall`) when the relay found it
    // there; read first (see `crash::signal_dump`), before waiting for the
    // other Ms.
    let curg = m.curg();
    let state = curg.map(|g| g.0.header_state().0);
    lock_sections();
    let mut o = Out::stderr();
    o.str("-----").nl().nl();
    o.str(name).nl();
    o.str("PC=")
        .hex(ctx.pc() as u64)
        .str(" m=")
        .dec(m.id as u64)
        .str(" sigcode=")
        .idec(i64::from(ctx.code()))
        .nl();
    if m.extra && m.curg().is_none_or(|g| g.status() == GStatus::Syscall) {
        o.str("signal arrived during foreign code execution").nl();
    }
    o.nl();
    let mut f = Frames::new();
    interrupted::capture(&mut f, ctx, curg, Some(m));
    // Sections often need only what earlier dumps resolved (Ms running the
    // same code): ask only for what is missing.
    let known = resolve::latest().filter(|a| {
        f.covered_by(a) && curg.is_none_or(|g| g.0.spawn_site().is_none_or(|s| a.covers_site(s)))
    });
    let answer = known.or_else(|| {
        resolve::Request::begin().and_then(|mut req| {
            f.add_to(&mut req);
            if let Some(g) = curg {
                dump::add_site(&mut req, g.0);
            }
            req.send(resolve::WAIT_NS)
        })
    });
    let answer = answer.or_else(resolve::latest);
    let style = Style {
        system: level() >= Level::System,
        answer,
    };
    let coarse = now_ns(libc::CLOCK_MONOTONIC_COARSE);
    interrupted::section(&mut o, &f, curg, state, coarse, "idle", style);
    o.nl();
    interrupted::print_regs(&mut o, ctx);
    o.flush();
    unlock_sections();
    CRASHING.fetch_add(1, Ordering::AcqRel);
    per.relay.store(RelayState::Dumped, Ordering::Release);
    exit::wait_for_the_end()
}
