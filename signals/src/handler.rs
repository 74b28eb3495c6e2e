//! The signal handler and the crash relay.
//!
//! # Async-signal-safety
//!
//! The handler allocates nothing and takes no lock that ordinary code may
//! hold. It reads the current M through the scheduler's thread-local slot (a
//! `thread_local!` with a `const` initialiser and no destructor: a plain TLS
//! word, never lazily initialised or registered), the G and M
//! registries (append-only, lock-free), the symbol and module tables (built
//! at start-up), and reads stacks only through the bounds-checked unwinder.
//! The extra-M list lock it may take (to bind an M on a foreign thread, or to
//! read `mcount − extra_m_count`) is a spin lock every user takes with all
//! signals blocked, so a handler can never spin on a lock its own thread
//! holds. All signals are blocked while the handler runs: a fault inside it
//! kills the process at once with the kernel's default action.
//!
//! # The crash relay (`GORT_TRACEBACK=crash`)
//!
//! The M that took the fatal signal (the *crasher*) prints the full dump,
//! then asks every runtime M that owns an OS thread to dump its own stack:
//! it marks each M's per-M state "asked" and sends SIGQUIT to that thread
//! with `tgkill` (never to the process, so it cannot land on a plain C
//! thread; never to an extra M on the pool's list, which has no thread).
//! Each asked M prints its section under a section lock (waiting Ms sleep
//! on it, a futex), so sections never interleave, and marks itself
//! "dumped". The crasher waits until
//! `crashing` (Ms that dumped) reaches `mcount − extra_m_count` read under
//! the extra-list lock — the accounting of Go's 2015/2017 fix — or every
//! asked M has answered. A watchdog ends the wait for an M that does not
//! answer (its signals masked, or stuck) 5 s after the last progress, and
//! names every M that stayed silent with its thread id. Then
//! the crasher aborts with SIGABRT, so its thread is thread 1 in the core.
//!
//! Rejected: asking one M at a time, as Go's process-directed relay must.
//! A signal sent to a thread is handled when that thread next runs; with
//! more busy threads than cores that is a scheduler time slice away, and
//! one at a time those waits add up (tens of ms for 8 Ms on 2 cores, where
//! asking all at once costs the longest single wait).
//!
//! Two more cases keep the count exact. A process-directed SIGQUIT that the
//! kernel hands to a thread without an M (the main thread, a plain C
//! thread) is forwarded to one runtime M, which then acts as the crasher,
//! so such threads never print. An M that faults while another thread is
//! already dumping sits in its handler with SIGQUIT blocked; it answers the
//! "asked" mark by polling it, with its own signal context, instead of
//! making the crasher wait for the watchdog.

use crate::altstack::{PerM, per_m};
use crate::dump::{self, Frames, Style};
use crate::level::{Level, level};
use crate::resolve;
use crate::table::{self, Action};
use crate::unwind::Regs;
use crate::write::Out;
use arch::sigctx::SigCtx;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use scheduler::extram;
use scheduler::g::{GRef, GStatus};
use scheduler::m::{ALLMS, M, MStatus};

/// Handlers that were installed before gort's, called after the dump.
static PREV: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
static PREV_FLAGS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
/// Ms that have dumped in this crash (the crasher included).
static CRASHING: AtomicU32 = AtomicU32::new(0);
/// Set by the first thread that starts a fatal dump.
static DYING: AtomicBool = AtomicBool::new(false);
/// Kernel thread id of that thread, and the signal it is dying of.
static DYING_TID: AtomicUsize = AtomicUsize::new(0);
static DYING_SIG: AtomicUsize = AtomicUsize::new(0);
/// Set while the crasher relays SIGQUIT.
static RELAYING: AtomicBool = AtomicBool::new(false);
/// How long the relay waits for an M without progress.
const RELAY_WATCHDOG_NS: u64 = 5_000_000_000;

pub(crate) fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe; ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How often the crasher looks whether the asked M has dumped.
const RELAY_POLL_NS: u64 = 50_000;

fn sleep_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep is async-signal-safe.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep is async-signal-safe.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

/// Top of the crash stack: the crasher's dump runs there, whatever stack the
/// signal arrived on (a plain thread's small std signal stack could not hold
/// it). Only the thread that wins `DYING` uses it.
static CRASH_STACK_TOP: AtomicUsize = AtomicUsize::new(0);
const CRASH_STACK_SIZE: usize = 1 << 20;

/// What the crasher passes to the crash stack.
struct CrashArgs {
    entry: &'static table::Entry,
    ctx: SigCtx,
    m: Option<&'static M>,
    lvl: Level,
}

/// First code on the crash stack.
unsafe extern "C" fn crash_entry(data: usize, _arg: usize) -> ! {
    // SAFETY: `handle` passes a CrashArgs on its own (never resumed) stack.
    let a = unsafe { &*(data as *const CrashArgs) };
    fatal(a.entry, &a.ctx, a.m, a.lvl)
}

fn map_crash_stack() {
    // SAFETY: a fresh private mapping; the low page becomes a guard.
    unsafe {
        let len = CRASH_STACK_SIZE + 4096;
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p != libc::MAP_FAILED {
            libc::mprotect(p, 4096, libc::PROT_NONE);
            CRASH_STACK_TOP.store(p as usize + len, Ordering::Release);
        }
    }
}

/// Test hook (`GORT_CRASH_SELFTEST=fault-in-handler`, read at start-up):
/// the handler faults right after its first line, to prove that a fault
/// inside the handler ends the process promptly with the original signal.
static SELFTEST_FAULT: AtomicBool = AtomicBool::new(false);

/// Installs gort's handler for every signal of the table, keeping the
/// previous handlers to call after the dump. Start-up only.
pub fn install() {
    if std::env::var("GORT_CRASH_SELFTEST").as_deref() == Ok("fault-in-handler") {
        SELFTEST_FAULT.store(true, Ordering::Relaxed);
    }
    map_crash_stack();
    arch::sigctx::SIGNAL_TARGET.store(handle as *const () as usize, Ordering::Release);
    crate::live::install();
    for e in table::TABLE {
        if let Some(old) = install_entry(e.signo)
            && old.sa_sigaction != arch::sigctx::signal_entry as *const () as usize
        {
            PREV[e.signo as usize].store(old.sa_sigaction, Ordering::Release);
            PREV_FLAGS[e.signo as usize].store(old.sa_flags as usize, Ordering::Release);
        }
    }
}

/// Installs `arch::sigctx::signal_entry` (which reaches [`handle`]) for
/// `signo`; returns the action it replaced, or `None` if sigaction failed.
/// Everything is blocked during the handler except the synchronous faults:
/// a fault inside the handler must re-enter it so that it ends the process
/// with the *original* signal (`die_with`); blocked, the kernel would kill
/// us with the new one.
pub(crate) fn install_entry(signo: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: sigaction with zeroed structs we fill; the entry point has
    // the SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        let mut old: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = arch::sigctx::signal_entry as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        for f in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut sa.sa_mask, f);
        }
        (libc::sigaction(signo, &sa, &mut old) == 0).then_some(old)
    }
}

/// M start hook part: unblock the table's signals on this thread and check
/// that nobody replaced a handler with one lacking `SA_ONSTACK`.
pub fn on_m_start() {
    // SAFETY: building a signal set and changing this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        for e in table::TABLE {
            libc::sigaddset(&mut set, e.signo);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
    }
    if onstack_check_due(now_ns(libc::CLOCK_MONOTONIC_COARSE)) {
        check_onstack();
    }
}

/// When an M start last looked at the handlers (`CLOCK_MONOTONIC_COARSE`,
/// ns; 0: never).
static ONSTACK_CHECKED_AT: AtomicU64 = AtomicU64::new(0);

/// How often M starts look at the handlers. The handlers are process-wide,
/// so one look stands for every M that starts soon after; looking at each
/// start cost a foreign thread's first callback (which starts an extra M)
/// seven `sigaction` calls, ~0.7 µs of ~1.6 µs.
const ONSTACK_CHECK_EVERY_NS: u64 = 100_000_000;

/// Whether the M starting at `now` should look (then it claims the look).
fn onstack_check_due(now: u64) -> bool {
    let last = ONSTACK_CHECKED_AT.load(Ordering::Relaxed);
    (last == 0 || now.saturating_sub(last) >= ONSTACK_CHECK_EVERY_NS)
        && ONSTACK_CHECKED_AT
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Reports handlers installed after gort's without `SA_ONSTACK`: a fault
/// on a G whose stack overflowed would then kill the process silently. Run
/// by M starts at most every [`ONSTACK_CHECK_EVERY_NS`].
pub fn check_onstack() -> usize {
    let mut bad = 0;
    for e in table::TABLE {
        // SAFETY: querying only.
        let cur = unsafe {
            let mut cur: libc::sigaction = core::mem::zeroed();
            libc::sigaction(e.signo, core::ptr::null(), &mut cur);
            cur
        };
        let ours = cur.sa_sigaction == arch::sigctx::signal_entry as *const () as usize;
        if !ours && cur.sa_sigaction > 1 && cur.sa_flags & libc::SA_ONSTACK == 0 {
            bad += 1;
            let mut o = Out::stderr();
            o.str("gort: the handler for ")
                .str(e.name)
                .str(" was replaced by one without SA_ONSTACK: ")
                .str("faults on G stacks will not be reported")
                .nl();
        }
    }
    bad
}

/// The handler (reached through `arch::sigctx::signal_entry`).
unsafe extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext.
    let ctx = unsafe { SigCtx::from_raw(info, uc) };
    if sig == crate::live::LIVE_SIGNAL {
        crate::live::on_signal(&ctx);
        return;
    }
    let Some(entry) = table::entry(sig) else {
        return;
    };
    // First: sysmon must not take a `syscall` label off a G whose thread
    // this signal just woke (see `scheduler::fatal::dumping`).
    scheduler::fatal::note_dumping();
    let m = scheduler::m::current_m();
    if entry.action == Action::Quit && RELAYING.load(Ordering::Acquire) {
        if let Some(m) = m
            && let Some(per) = per_m(m)
            && per.dump.load(Ordering::Acquire) == 1
        {
            relayed_dump(m, per, &ctx, entry.name);
        }
        // A relay SIGQUIT for someone else, or a second one: ignore.
        return;
    }
    if entry.action == Action::Quit
        && m.is_none()
        && matches!(ctx.code(), libc::SI_USER | libc::SI_QUEUE)
        && !DYING.load(Ordering::Acquire)
        && forward_quit()
    {
        // A process-directed SIGQUIT landed on a thread without an M (the
        // main thread, a plain C thread): a runtime M took it over.
        return;
    }
    // SAFETY: gettid is async-signal-safe.
    let tid = unsafe { libc::gettid() } as usize;
    if DYING.swap(true, Ordering::AcqRel) {
        if DYING_TID.load(Ordering::Acquire) == tid {
            // A signal inside our own dump (a fault in the handler, or the
            // abort of a handler we chained to): end now, with the original
            // signal.
            die_with(DYING_SIG.load(Ordering::Acquire) as i32);
        }
        // Another thread is already dumping: wait for it to end the process.
        // This thread's signals are blocked, so in crash mode the relay's
        // SIGQUIT stays pending: answer the relay's "asked" mark instead,
        // with this thread's own signal context, so the crash neither waits
        // for the watchdog nor loses this M's stack.
        loop {
            if let Some(m) = m
                && let Some(per) = per_m(m)
                && RELAYING.load(Ordering::Acquire)
                && per.dump.load(Ordering::Acquire) == 1
            {
                relayed_dump(m, per, &ctx, entry.name);
            }
            sleep_ms(1);
        }
    }
    DYING_TID.store(tid, Ordering::Release);
    DYING_SIG.store(sig as usize, Ordering::Release);
    let lvl = if entry.action == Action::Quit {
        crate::level::raise_for_quit()
    } else {
        level()
    };
    let top = CRASH_STACK_TOP.load(Ordering::Acquire);
    if top == 0 {
        fatal(entry, &ctx, m, lvl);
    }
    let args = CrashArgs { entry, ctx, m, lvl };
    // SAFETY: the crash stack is ours alone (we won DYING) and large; the
    // args live on this stack, which we never return to.
    unsafe {
        let sp = arch::context::init_stack(top, crash_entry, &args as *const CrashArgs as usize);
        let mut abandoned = 0usize;
        arch::context::switch(&mut abandoned, sp, 0);
    }
    fatal(entry, &ctx, m, lvl)
}

/// The stack a signal interrupted: its G's section (`state` for the
/// header), or the M's own stack as `goroutine 0 [no_g]:` with every frame.
fn interrupted_section(
    o: &mut Out,
    f: &Frames,
    g: Option<GRef>,
    state: Option<&str>,
    coarse: u64,
    no_g: &str,
    style: Style,
) {
    match g {
        Some(g) => {
            dump::header(o, g.0, state, coarse);
            dump::stack(o, f, style);
            dump::created_by(o, g.0, style);
        }
        None => {
            o.str("goroutine 0 [").str(no_g).str("]:").nl();
            dump::stack(
                o,
                f,
                Style {
                    system: true,
                    ..style
                },
            );
        }
    }
}

/// The dump of the crasher, then the relay or the exit.
fn fatal(entry: &table::Entry, ctx: &SigCtx, m: Option<&'static M>, lvl: Level) -> ! {
    let mut o = Out::stderr();
    let g = m.and_then(|m| m.curg());
    // A fault or an abort comes from the G's own code: it runs. A SIGQUIT
    // may find it asleep in the kernel (`syscall`). Read first: while this
    // handler runs, sysmon sees the thread use CPU and drops the label.
    let state = g.map(|g| match entry.action {
        Action::Quit => g.0.header_state().0,
        _ => "running",
    });
    let coarse = now_ns(libc::CLOCK_MONOTONIC_COARSE);

    // A G stack overflow: the fault is in (or just below) the guard under
    // the G's stack.
    let overflow = g.filter(|g| {
        let (lo, _) = g.stack_bounds();
        let a = ctx.fault_addr();
        (entry.signo == libc::SIGSEGV || entry.signo == libc::SIGBUS)
            && lo != 0
            && a < lo
            && a + 64 * 1024 >= lo
    });

    // Line 1: greppable summary.
    o.str("fatal signal ")
        .str(entry.name)
        .str(" code=")
        .idec(i64::from(ctx.code()));
    let cn = table::code_name(entry.signo, ctx.code());
    if !cn.is_empty() {
        o.str("(").str(cn).str(")");
    }
    if entry.action == Action::Fault {
        o.str(" addr=").hex(ctx.fault_addr() as u64);
    }
    o.str(" pc=").hex(ctx.pc() as u64);
    o.str(" m=");
    match m {
        Some(m) => o.dec(m.id as u64),
        None => o.str("none"),
    };
    // SAFETY: gettid is async-signal-safe.
    o.str(" tid=").dec(unsafe { libc::gettid() } as u64);
    o.str(" goroutine=").dec(g.map_or(0, |g| g.goid())).nl();
    if SELFTEST_FAULT.load(Ordering::Relaxed) {
        // SAFETY: none: the self-test hook faults on purpose.
        unsafe { core::ptr::read_volatile(core::ptr::null::<u8>().wrapping_add(8)) };
    }
    if let Some(g) = overflow {
        let (lo, hi) = g.stack_bounds();
        o.str("runtime: goroutine ")
            .dec(g.goid())
            .str(" stack exceeds ")
            .dec((hi - lo) as u64)
            .str("-byte limit")
            .nl();
    }
    o.str(entry.name).nl();
    o.str("PC=").hex(ctx.pc() as u64).str(" m=");
    match m {
        Some(m) => o.dec(m.id as u64),
        None => o.str("none"),
    };
    o.str(" sigcode=").idec(i64::from(ctx.code()));
    if entry.action == Action::Fault {
        o.str(" addr=").hex(ctx.fault_addr() as u64);
    }
    o.nl();
    if m.is_some_and(|m| m.extra) && g.is_none_or(|g| g.status() == GStatus::Syscall) {
        o.str("signal arrived during foreign code execution").nl();
    } else if m.is_none() {
        o.str("signal arrived on a thread the runtime does not know (no M)")
            .nl();
    }

    if lvl > Level::None {
        // The faulting G (or the M's own stack) first, from the ucontext;
        // the other Gs grouped; then file:line for all of it in one request.
        let mut f = Frames::new();
        let regs = Regs {
            pc: ctx.pc(),
            sp: ctx.sp(),
            fp: ctx.fp(),
            lr: ctx.lr(),
        };
        match g {
            Some(g) => capture_running(&mut f, regs, g, m, ctx.sp()),
            None => f.capture(regs, &[os_stack(m, ctx.sp())]),
        }
        let others = (lvl >= Level::All)
            .then(|| dump::Groups::collect(g.map(|g| g.index), lvl >= Level::System));
        let answer = resolve::Request::begin().and_then(|mut req| {
            f.add_to(&mut req);
            if let Some(g) = g {
                dump::add_site(&mut req, g.0);
            }
            if let Some(others) = &others {
                others.add_to(&mut req);
            }
            req.send(resolve::WAIT_NS)
        });
        let style = Style {
            system: lvl >= Level::System,
            answer,
        };
        o.nl();
        let no_g = if m.is_some() { "scheduler" } else { "thread" };
        interrupted_section(&mut o, &f, g, state, coarse, no_g, style);
        if let Some(others) = &others {
            others.print(&mut o, style, coarse);
        }
        o.nl();
        print_regs(&mut o, ctx);
        dump::module_list(&mut o);
    }
    o.flush();

    if lvl == Level::Crash {
        relay_and_abort(m);
    }
    chain_previous(entry.signo, ctx);
    if entry.action == Action::Quit
        || entry.action == Action::Fault
        || entry.action == Action::Abort
    {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(2) };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(2) }
}

/// `[lo, hi)` of the OS stack the handler may read for thread stacks: the M's
/// recorded thread stack, or the main thread's. For a thread the runtime does
/// not know, the pages above `sp` that a probe finds readable (none when
/// `sp` is in a guard page after an overflow: then only the pc prints).
fn os_stack(m: Option<&'static M>, sp: usize) -> (usize, usize) {
    if let Some((lo, hi)) = m.and_then(crate::altstack::thread_stack) {
        return (lo, hi);
    }
    crate::altstack::main_stack_if(sp)
        .unwrap_or_else(|| crate::altstack::readable_above(sp, 8 << 20))
}

/// Prints the registers in Go's layout (`rax    0x…`).
fn print_regs(o: &mut Out, ctx: &SigCtx) {
    ctx.dump_regs(&mut |name, v| {
        o.str(name);
        for _ in name.len()..7 {
            o.str(" ");
        }
        o.hex(v).nl();
    });
}

/// Walks the G running on `m` from the signal context: its own stack and,
/// for frames below a C call or the signal, the M's OS stack (the one `sp`
/// is on first).
pub(crate) fn capture_running(
    f: &mut Frames,
    regs: Regs,
    g: scheduler::GRef,
    m: Option<&'static M>,
    sp: usize,
) {
    let (lo, hi) = g.stack_bounds();
    let mut ranges = [(lo, hi), os_stack(m, sp)];
    if !(lo..hi).contains(&sp) {
        ranges.swap(0, 1);
    }
    f.capture(regs, &ranges);
}

/// Calls the handler that was installed before gort's, if it was a real
/// function (std's stack-overflow reporter, a C library's handler).
fn chain_previous(signo: i32, ctx: &SigCtx) {
    let prev = PREV[signo as usize].load(Ordering::Acquire);
    if prev <= 1 {
        return;
    }
    let flags = PREV_FLAGS[signo as usize].load(Ordering::Acquire) as i32;
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature; the arguments are the kernel's.
        let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(prev) };
        // SAFETY: as above.
        unsafe { f(signo, ctx.info_ptr(), ctx.uc_ptr()) };
    } else {
        // SAFETY: a plain handler: fn(int).
        let f: unsafe extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(prev) };
        // SAFETY: as above.
        unsafe { f(signo) };
    }
}

/// The crash relay (see the module docs), then SIGABRT.
fn relay_and_abort(me: Option<&'static M>) -> ! {
    relay_ask(me);
    relay_wait_and_abort()
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
fn relay_ask(me: Option<&'static M>) {
    // Only Ms count: a crasher without an M (a plain thread that took a
    // process-directed signal) must still relay to every threaded M.
    if let Some(me) = me {
        CRASHING.fetch_add(1, Ordering::AcqRel);
        if let Some(per) = per_m(me) {
            per.dump.store(2, Ordering::Release);
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
        let Some(per) = per_m(m) else { continue };
        if tid == 0 || per.dump.load(Ordering::Acquire) != 0 {
            continue;
        }
        per.dump.store(1, Ordering::Release);
        // SAFETY: tgkill to a thread of our own process.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGQUIT) };
    }
}

/// The relay's second half: waits for the asked Ms' sections (watchdog
/// included), then aborts.
fn relay_wait_and_abort() -> ! {
    if scheduler::fork::in_forked_child() {
        abort_now();
    }
    // Wait until `crashing` reaches the Ms that own a thread (the seed's
    // accounting: the pooled extra Ms have none and are never waited for),
    // or every asked M has answered; the watchdog restarts on each answer.
    let mut seen = CRASHING.load(Ordering::Acquire);
    let mut last_progress = now_ns(libc::CLOCK_MONOTONIC);
    loop {
        let (mcount, extra) = extram::counts_consistent();
        let crashing = CRASHING.load(Ordering::Acquire);
        let waiting = ALLMS
            .iter()
            .find(|m| per_m(m).is_some_and(|p| p.dump.load(Ordering::Acquire) == 1));
        let Some(waiting) = waiting else { break };
        if crashing as usize >= mcount.saturating_sub(extra) {
            break;
        }
        let now = now_ns(libc::CLOCK_MONOTONIC);
        if crashing != seen {
            seen = crashing;
            last_progress = now;
        } else if now - last_progress > RELAY_WATCHDOG_NS {
            report_silent_ms(waiting);
            abort_now();
        }
        // A fine poll: a relayed M dumps in well under a millisecond, and
        // each wait adds to the time a crash takes.
        sleep_ns(RELAY_POLL_NS);
    }
    abort_now()
}

/// The watchdog fired: names every M that was asked and never answered
/// (its signals masked, e.g. a foreign thread that blocked all signals
/// after binding, or stuck with them blocked), one line each with its
/// thread id, then how many. `first` is one of them.
fn report_silent_ms(first: &'static M) {
    let mut o = Out::stderr();
    let mut silent = 0u64;
    for m in ALLMS.iter() {
        let asked = per_m(m).is_some_and(|p| p.dump.load(Ordering::Acquire) == 1);
        if !asked && !core::ptr::eq(m, first) {
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

/// Ends the process with `sig` and its default action.
fn die_with(sig: i32) -> ! {
    // SAFETY: resetting a handler, unblocking and sending a signal to this
    // thread are async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, core::ptr::null_mut());
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
        libc::_exit(128 + sig)
    }
}

/// Raises SIGABRT with the default action on this thread (core dump).
fn abort_now() -> ! {
    // SAFETY: resetting SIGABRT to the default, unblocking it, and sending it
    // to this thread are all async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGABRT, &sa, core::ptr::null_mut());
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGABRT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::gettid(),
            libc::SIGABRT,
        );
        libc::_exit(134)
    }
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
fn forward_quit() -> bool {
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

/// A relayed SIGQUIT on M `m` (or, for an M that lost the race to dump, its
/// own fatal signal `name`): print its current G (or its own stack) once,
/// then wait for the crasher to end the process.
fn relayed_dump(m: &'static M, per: &PerM, ctx: &SigCtx, name: &str) -> ! {
    // Running, or asleep in the kernel (`syscall`) when the relay found it
    // there; read first (see `fatal`), before waiting for the other Ms.
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
    let regs = Regs {
        pc: ctx.pc(),
        sp: ctx.sp(),
        fp: ctx.fp(),
        lr: ctx.lr(),
    };
    match curg {
        Some(g) => capture_running(&mut f, regs, g, Some(m), ctx.sp()),
        None => f.capture(regs, &[os_stack(Some(m), ctx.sp())]),
    }
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
    interrupted_section(&mut o, &f, curg, state, coarse, "idle", style);
    o.nl();
    print_regs(&mut o, ctx);
    o.flush();
    unlock_sections();
    CRASHING.fetch_add(1, Ordering::AcqRel);
    per.dump.store(2, Ordering::Release);
    loop {
        sleep_ms(1000);
    }
}

/// Fatal errors outside signal handlers (`throw`, a deadlock, an unhandled
/// panic in crash mode): the `fatal error:` line is already printed; add
/// every G's traceback and the module list, then relay (crash level) or exit
/// with status 2.
pub fn fatal_hook(_msg: &str) {
    if DYING.swap(true, Ordering::AcqRel) {
        loop {
            sleep_ms(1000);
        }
    }
    let lvl = level().max(Level::All);
    let m = scheduler::m::current_m();
    let mut o = Out::stderr();
    let coarse = now_ns(libc::CLOCK_MONOTONIC_COARSE);
    if let Some(g) = m.and_then(|m| m.curg()) {
        o.nl();
        o.str("[goroutine ")
            .dec(g.0.goid())
            .str(" reported the error]")
            .nl();
    }
    if lvl > Level::None {
        let others = dump::Groups::collect(
            m.and_then(|m| m.curg()).map(|g| g.index),
            lvl >= Level::System,
        );
        let answer = resolve::Request::begin().and_then(|mut req| {
            others.add_to(&mut req);
            req.send(resolve::WAIT_NS)
        });
        let style = Style {
            system: lvl >= Level::System,
            answer,
        };
        others.print(&mut o, style, coarse);
        dump::module_list(&mut o);
    }
    o.flush();
    if level() == Level::Crash {
        relay_and_abort(m);
    }
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(2) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Symptom: every M start pays for the handler check (seven syscalls on
    /// a foreign thread's first callback), or a check never comes again.
    #[test]
    fn m_starts_look_at_the_handlers_at_most_every_interval() {
        // Far past any real clock reading, so M starts elsewhere in this
        // process cannot claim a look in between.
        let t = 1u64 << 62;
        assert!(onstack_check_due(t));
        assert!(!onstack_check_due(t + 1_000_000));
        assert!(!onstack_check_due(t + ONSTACK_CHECK_EVERY_NS - 1));
        assert!(onstack_check_due(t + ONSTACK_CHECK_EVERY_NS));
        assert!(!onstack_check_due(t + ONSTACK_CHECK_EVERY_NS + 1));
    }
}
