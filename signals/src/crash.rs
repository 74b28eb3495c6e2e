//! The crasher's dump: what the first thread to die prints, for a fatal
//! signal ([`signal_dump`]) or a fatal runtime error ([`fatal_error_dump`]),
//! and the crash stack it prints on. The dispatch ([`crate::handler`])
//! calls it, then the relay or the exit; nothing here relays or exits.
//!
//! Async-signal-safe: see [`crate::dump`]. The dump runs on the crash
//! stack (mapped at installation), whatever stack the signal arrived on: a
//! plain thread's small std signal stack could not hold it.

use crate::clock::now_ns;
use crate::dump::{self, Frames, Style};
use crate::interrupted;
use crate::level::{Level, level};
use crate::resolve;
use crate::table::{self, Action};
use crate::write::Out;
use arch::sigctx::SigCtx;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use scheduler::g::GStatus;
use scheduler::m::M;

/// Top of the crash stack; 0 until [`map_stack`] ran (or if it failed).
/// Only the thread that won the race to dump uses the stack.
static CRASH_STACK_TOP: AtomicUsize = AtomicUsize::new(0);
const CRASH_STACK_SIZE: usize = 1 << 20;

/// Maps the crash stack, a guard page below it (start-up).
pub(crate) fn map_stack() {
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

/// Switches to the crash stack and calls `entry(data, 0)` there; never
/// comes back. Returns at once if there is no crash stack: the caller
/// then dumps on the stack it is on.
///
/// # Safety
///
/// Only the thread that won the race to dump may call it (the stack is
/// one, not one per thread), and `data` must stay valid for as long as
/// `entry` uses it: the caller's stack, which is never returned to, does.
pub(crate) unsafe fn run_on_crash_stack(entry: arch::context::EntryFn, data: usize) {
    let top = CRASH_STACK_TOP.load(Ordering::Acquire);
    if top == 0 {
        return;
    }
    // SAFETY: the crash stack is the caller's alone (this function's
    // contract) and large; `entry` never returns, so the abandoned context
    // is never resumed.
    unsafe {
        let sp = arch::context::init_stack(top, entry, data);
        let mut abandoned = 0usize;
        arch::context::switch(&mut abandoned, sp, 0);
    }
}

/// Test hook (`GORT_CRASH_SELFTEST=fault-in-handler`, read at start-up):
/// the handler faults right after its first line, to prove that a fault
/// inside the handler ends the process promptly with the original signal.
static SELFTEST_FAULT: AtomicBool = AtomicBool::new(false);

/// Arms the self-test fault if the environment asks for it (start-up).
pub(crate) fn arm_selftest_from_env() {
    if std::env::var("GORT_CRASH_SELFTEST").as_deref() == Ok("fault-in-handler") {
        SELFTEST_FAULT.store(true, Ordering::Relaxed);
    }
}

/// The crasher's dump of a fatal signal: the summary line, the signal, the
/// interrupted stack, at `lvl` ≥ `all` every other G, the registers and the
/// module list.
pub(crate) fn signal_dump(entry: &table::Entry, ctx: &SigCtx, m: Option<&'static M>, lvl: Level) {
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
        interrupted::capture(&mut f, ctx, g, m);
        if lvl >= Level::All
            && let Some(mut req) = resolve::Request::begin()
        {
            // The symbolizer starts on the faulting stack while this thread
            // walks the other Gs (milliseconds with thousands of them).
            f.add_to(&mut req);
            if let Some(g) = g {
                dump::add_site(&mut req, g.0);
            }
            req.prefetch();
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
        interrupted::section(&mut o, &f, g, state, coarse, no_g, style);
        if let Some(others) = &others {
            others.print(&mut o, style, coarse);
        }
        o.nl();
        interrupted::print_regs(&mut o, ctx);
        dump::module_list(&mut o);
    }
    o.flush();
}

/// The crasher's dump of a fatal error outside signal handlers (`throw`, a
/// deadlock, an unhandled panic in crash mode), on M `m` if the error came
/// from one: the `fatal error:` line is already printed; add every G's
/// traceback and the module list.
pub(crate) fn fatal_error_dump(m: Option<&'static M>) {
    let lvl = level().max(Level::All);
    let mut o = Out::stderr();
    let coarse = now_ns(libc::CLOCK_MONOTONIC_COARSE);
    if let Some(g) = m.and_then(|m| m.curg()) {
        o.nl();
        o.str("[goroutine ")
            .dec(g.0.goid())
            .str(" reported the error]")
            .nl();
    }
    // At `all` at least, so there is always a traceback to print.
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
    o.flush();
}
