//! gort's crash tracing.
//!
//! **Internal to gort, not a stable API**: public for gort's other crates,
//! changed in any release. Use the `gort` crate (imported as `runtime`).
//!
//! On a fatal signal the handler prints the signal, the faulting M and G,
//! a traceback of the faulting G (and, from `GORT_TRACEBACK=all` on, of every
//! G), the registers and the module list. With `GORT_TRACEBACK=crash` it then
//! relays SIGQUIT to every M that owns an OS thread so each dumps its own
//! stack, and aborts for a core dump. The format is in
//! `docs/crash-format.md`.
//!
//! # The crash path, one way
//!
//! Each room has one role, and calls only rooms below it:
//!
//! ```text
//!  lib::init ──> install            start-up: handlers, crash stack,
//!                   │                 previous handlers, per-M hook
//!                   ▼ (the kernel, through arch::sigctx::signal_entry;
//!                      scheduler::fatal for fatal errors)
//!                handler            dispatch: which room a signal goes to
//!            ┌──────┼───────┐
//!            ▼      ▼       ▼
//!          live   crash   relay     a live dump's walk; the crasher's
//!            │      │       │         dump; asking every M, an asked M's
//!            │      │       │         section, forwarding SIGQUIT
//!            │      └───┬───┘
//!            │          ▼
//!            │        exit          die_with, abort, _exit, wait
//!            ▼
//!  helpers:  interrupted (the stack a signal interrupted) → dump → unwind,
//!            resolve, symbols, modules; per_m → altstack; previous,
//!            table, level, clock, write
//! ```
//!
//! `crash` never relays and `relay` never dumps the crasher: the dispatch
//! sequences them (dump, then relay or exit). Helpers never call up into
//! the rooms above them. [`live`] and [`notify`] are also entry points of
//! their own for the runtime (they make sure [`init`] ran).
//!
//! Modules, in reading order:
//!
//! - [`level`]: `GORT_TRACEBACK` and its levels;
//! - [`table`]: the signals handled and what each does (data);
//! - [`install`]: installing the handlers, the per-M part at M start;
//! - [`handler`]: the dispatch of every signal and fatal error;
//! - `crash`: the crasher's dump and the crash stack it runs on;
//! - `relay`: the crash relay (`GORT_TRACEBACK=crash`);
//! - `exit`: how a crash ends the process;
//! - `interrupted`: walking and printing the stack a signal interrupted;
//! - [`dump`]: what a dump prints and how (async-signal-safe);
//! - [`unwind`]: the bounds-checked, allocation-free stack walker (its
//!   per-architecture steps are in `arch::unwind`);
//! - [`symbols`], [`modules`]: the tables built at start-up that the
//!   handler reads;
//! - [`live`]: dumps of every G while the program runs;
//! - [`notify`]: other signals delivered to the program (`runtime::signal`);
//! - [`resolve`]: the symbolizer thread that gives a dump `file:line`;
//!   [`symbolize`]: debug info lookups it shares with `gort-symbolize`;
//! - [`per_m`]: per-M state (the relay's [`per_m::RelayState`]);
//!   [`altstack`]: alternate signal stacks and the other stacks a handler
//!   may read;
//! - `previous`: the handlers installed before gort's;
//! - `clock`, [`write`]: clocks, sleeps and formatting without allocation.
//!
//! Dependencies: the scheduler knows nothing of this crate; it offers M
//! start/exit hooks and a fatal-error hook, which [`init`] installs.

pub mod altstack;
mod clock;
mod crash;
pub mod dump;
mod exit;
pub mod handler;
pub mod install;
mod interrupted;
pub mod level;
pub mod live;
pub mod modules;
pub mod notify;
pub mod per_m;
mod previous;
mod relay;
pub mod resolve;
pub mod symbolize;
pub mod symbols;
pub mod table;
pub mod unwind;
pub mod write;

pub use level::Level;

use std::sync::Once;

/// Sets up crash tracing (once): reads `GORT_TRACEBACK`, lists modules,
/// prepares the unwinder, installs the handlers and the M hooks, and builds
/// the symbol table in the background. Call before the first M starts (the
/// runtime crate does it on first use).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        level::init_from_env();
        modules::init();
        unwind::init();
        altstack::record_main_stack();
        altstack::init_probe();
        scheduler::set_m_hooks(scheduler::MHooks {
            start: m_start,
            exit: m_exit,
        });
        install::install();
        scheduler::fatal::set_fatal_hook(handler::fatal_hook);
        // file:line in dumps: a thread that reads debug info only when a
        // dump asks (ready from here on, whatever the build).
        resolve::start();
        scheduler::set_pc_describer(describe_pc);
        // Demangling every symbol takes milliseconds: off the critical path.
        // It names frames when the symbolizer cannot answer.
        let _ = std::thread::Builder::new()
            .name("gort-symbols".into())
            .spawn(symbols::init);
    });
}

/// Names a code address for the scheduler's blocking log (not a signal
/// handler: it may allocate): `symbol+0xoff in module`, or `module+0xoff`.
fn describe_pc(pc: usize) -> Option<String> {
    let module = modules::module_of(pc);
    let file = module.map(|(m, _)| m.path.rsplit('/').next().unwrap_or(&m.path));
    match (symbols::lookup(pc), module, file) {
        (Some(sym), _, Some(file)) => Some(format!("{}+0x{:x} in {file}", sym.name, sym.offset)),
        (Some(sym), _, None) => Some(format!("{}+0x{:x}", sym.name, sym.offset)),
        (None, Some((_, off)), Some(file)) => Some(format!("{file}+0x{off:x}")),
        _ => None,
    }
}

fn m_start(m: &scheduler::M) {
    per_m::on_m_start(m);
    install::on_m_start();
}

fn m_exit(m: &scheduler::M) {
    per_m::on_m_exit(m);
}

/// Raises the traceback level to at least `l` (never below the
/// environment's). Returns the level in force.
pub fn set_traceback(l: Level) -> Level {
    level::raise(l)
}
