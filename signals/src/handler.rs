//! The handler's dispatch: where every signal gort handles, and every fatal
//! runtime error, arrives, and which room it goes to.
//!
//! ```text
//! handle(sig)                               fatal_hook(msg)
//!   SIGURG (live dump) ──────────> live       first to die? else wait
//!   SIGQUIT during a relay ──────> relay      crash::fatal_error_dump
//!   SIGQUIT on a thread without M ─> relay    relay::run (crash level)
//!     (forwarded to an M)                     or exit::exit(2)
//!   a signal inside our own dump ─> exit::die_with(original signal)
//!   another thread is dumping ───> relay (answer if asked), else wait
//!   first to die: onto the crash stack,
//!     crash::signal_dump, then relay::run (crash level)
//!     or previous::chain + exit::exit(2)
//! ```
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
//! holds. All signals are blocked while the handler runs, except the
//! synchronous faults: a fault inside the handler re-enters it and ends the
//! process with the original signal ([`crate::install`] sets the mask).

use crate::clock;
use crate::crash;
use crate::exit;
use crate::level::{self, Level, level};
use crate::live;
use crate::previous;
use crate::relay;
use crate::table::{self, Action};
use arch::sigctx::SigCtx;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use scheduler::m::M;

/// Set by the first thread that starts a fatal dump (the crasher).
static DYING: AtomicBool = AtomicBool::new(false);
/// Kernel thread id of that thread, and the signal it is dying of.
static DYING_TID: AtomicUsize = AtomicUsize::new(0);
static DYING_SIG: AtomicUsize = AtomicUsize::new(0);

/// The handler (reached through `arch::sigctx::signal_entry`).
///
/// # Safety
///
/// Only the kernel calls it (through `signal_entry`), as an `SA_SIGINFO`
/// handler with its own `sig`, `info` and `uc`.
pub(crate) unsafe extern "C" fn handle(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo and ucontext (this
    // function's contract).
    let ctx = unsafe { SigCtx::from_raw(info, uc) };
    if sig == live::LIVE_SIGNAL {
        live::on_signal(&ctx);
        return;
    }
    let Some(entry) = table::entry(sig) else {
        return;
    };
    // First: sysmon must not take a `syscall` label off a G whose thread
    // this signal just woke (see `scheduler::fatal::dumping`).
    scheduler::fatal::note_dumping();
    let m = scheduler::m::current_m();
    if entry.action == Action::Quit && relay::relaying() {
        relay::answer_if_asked(m, &ctx, entry.name);
        // A relay SIGQUIT for someone else, or a second one: ignore.
        return;
    }
    if entry.action == Action::Quit
        && m.is_none()
        && matches!(ctx.code(), libc::SI_USER | libc::SI_QUEUE)
        && !DYING.load(Ordering::Acquire)
        && relay::forward_quit()
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
            exit::die_with(DYING_SIG.load(Ordering::Acquire) as i32);
        }
        // Another thread is already dumping: wait for it to end the process.
        // This thread's signals are blocked, so in crash mode the relay's
        // SIGQUIT stays pending: answer the relay's "asked" mark instead,
        // with this thread's own signal context, so the crash neither waits
        // for the watchdog nor loses this M's stack.
        loop {
            relay::answer_if_asked(m, &ctx, entry.name);
            clock::sleep_ns(1_000_000);
        }
    }
    DYING_TID.store(tid, Ordering::Release);
    DYING_SIG.store(sig as usize, Ordering::Release);
    let lvl = if entry.action == Action::Quit {
        level::raise_for_quit()
    } else {
        level()
    };
    let crasher = Crasher { entry, ctx, m, lvl };
    // SAFETY: we won DYING, so the crash stack is ours alone; `crasher`
    // lives on this stack, which is never returned to.
    unsafe { crash::run_on_crash_stack(crasher_entry, &crasher as *const Crasher as usize) };
    // No crash stack (its mapping failed): dump where we are.
    crasher.run()
}

/// What the crasher carries onto the crash stack.
struct Crasher {
    entry: &'static table::Entry,
    ctx: SigCtx,
    m: Option<&'static M>,
    lvl: Level,
}

impl Crasher {
    /// The crasher's path after the dispatch: the dump, then the relay
    /// (crash level) or the previous handler and the exit.
    fn run(&self) -> ! {
        crash::signal_dump(self.entry, &self.ctx, self.m, self.lvl);
        if self.lvl == Level::Crash {
            relay::run(self.m);
        }
        previous::chain(self.entry.signo, &self.ctx);
        exit::exit(2)
    }
}

/// First code on the crash stack.
unsafe extern "C" fn crasher_entry(data: usize, _arg: usize) -> ! {
    // SAFETY: `handle` passes a Crasher on its own (never resumed) stack.
    let crasher = unsafe { &*(data as *const Crasher) };
    crasher.run()
}

/// Fatal errors outside signal handlers (`throw`, a deadlock, an unhandled
/// panic in crash mode): the `fatal error:` line is already printed; add
/// every G's traceback and the module list, then relay (crash level) or exit
/// with status 2.
pub fn fatal_hook(_msg: &str) {
    if DYING.swap(true, Ordering::AcqRel) {
        exit::wait_for_the_end();
    }
    let m = scheduler::m::current_m();
    crash::fatal_error_dump(m);
    if level() == Level::Crash {
        relay::run(m);
    }
    exit::exit(2)
}
