//! gort's M:N scheduler.
//!
//! **Internal to gort, not a stable API**: public for gort's other crates,
//! changed in any release. Use the `gort` crate (imported as `runtime`).
//!
//! Gs (green threads) run on Ms (OS threads) that hold Ps (the right to run
//! Gs), as in Go. The crate reads one way, in three layers; each imports
//! only the layers below it (`docs/design.md`, "Module map", draws it, and
//! `tests/module_graph.rs` checks it).
//!
//! **The data layer** — state, and operations on it that call no
//! scheduling logic:
//!
//! 1. [`g`], [`m`], [`p`]: the G and its status (which says who owns its
//!    stack), the M and its note (how it sleeps) and the current-M lookup
//!    that survives a G moving between threads, the P and the lend/retake
//!    of a P set aside; [`runq`]: a P's run queue (crossbeam-deque +
//!    `runnext`); [`timer_heap`]: a P's timers.
//! 2. [`state`]: `Sched`, the global state and idle lists; [`lock_rank`]:
//!    the one order in which every runtime lock is taken, checked in debug
//!    builds; [`mlist`]: all Ms counted, and the extra-M list; [`bell`]: the
//!    flags that wake sysmon.
//! 3. [`clock`] (the one clock), [`stack`] (G stacks with guard pages in
//!    one reserved region), [`registry`] (the append-only lists of all Gs
//!    and Ms a signal handler can walk without locks), [`barrier`] (the
//!    asymmetric barriers the hot paths rely on), [`config`], [`fatal`],
//!    [`fork`] (what a forked child may still do: exec), [`bound`],
//!    [`thread_state`] (what the kernel says of a thread), [`socket`] and
//!    [`process`] (the system calls `runtime::net` and `runtime::process`
//!    build on).
//!
//! **The engine** — [`engine`]: switching, parking and readying, finding
//! work and spinning, the M and G life cycles, the hand-off of Ps, with the
//! no-lost-wake-up protocol written where it is coded. Its rooms are
//! private; satellites use the API its root re-exports.
//!
//! **Satellites** — built on the engine's API:
//!
//! 4. [`spawn`], [`join`], [`timer`], [`waiter`]: creating Gs, the slot a
//!    G's result reaches its joiner through, arming timers (sleeping Gs,
//!    functions), who waits (a G or a plain thread).
//!    [`sync_queue`], [`sema`], [`cell`]: the building blocks of
//!    `runtime::sync` — wait queues that park Gs and block threads
//!    (deadlines on the timers), Go's runtime semaphore, the cells that
//!    hand out locked data.
//! 5. [`chan`]: Go's channels and `select` (here because they need unsafe
//!    code: waiters' records live on their stacks, as Go's sudogs).
//! 6. [`syscall`], [`sysmon`], [`preempt`]: calls out of the runtime that
//!    set the P aside, the monitor thread that retakes a P from them or from
//!    a G's long user code, and the demotion of a thread that lost its P.
//! 7. [`netpoll`]: Gs parked on sockets (epoll).
//! 8. [`extram`], [`callback`]: the extra-M pool (`needm`/`dropm`) and
//!    callbacks from foreign threads.
//! 9. [`deadlock`] (Go's `checkdead`), [`stats`].
//!
//! Design notes: `docs/design.md`. Users do not depend on this crate
//! directly; they use `runtime`.

pub mod barrier;
pub mod bell;
pub mod bound;
pub mod callback;
pub mod cell;
pub mod chan;
pub mod clock;
pub mod config;
pub mod deadlock;
pub mod engine;
pub mod extram;
pub mod fatal;
pub mod fork;
pub mod g;
pub mod glocal;
pub mod join;
pub mod lock_rank;
mod loom;
pub mod m;
pub mod mlist;
pub mod netpoll;
pub mod p;
pub mod preempt;
pub mod process;
pub mod registry;
pub mod runq;
pub mod sema;
pub mod socket;
pub mod spawn;
pub mod stack;
pub mod state;
pub mod stats;
pub mod sync_queue;
pub mod syscall;
pub mod sysmon;
#[cfg(test)]
mod test_support;
pub mod thread_state;
pub mod timer;
pub mod timer_heap;
pub mod waiter;

pub use bound::ThreadBound;
pub use callback::{CallbackError, callback};
pub use engine::{lock_os_thread, park, ready, unlock_os_thread, yield_now};
pub use extram::{DropmError, NeedmError, dropm, needm};
pub use g::{Entry, G, GRef, GStatus, WaitReason};
pub use glocal::GLocal;
pub use m::{M, MHooks, current_g, current_m, set_m_hooks};
pub use preempt::preempt_point;
pub use spawn::{SpawnError, SpawnOptions, spawn};
pub use stats::{Stats, stats};
pub use syscall::syscall;
pub use thread_state::set_pc_describer;
pub use timer::sleep;
pub use waiter::{Waiter, park_unlock};

/// Wires the satellites into the engine: the hooks it calls where it needs
/// one (see `engine/hooks.rs`). Runs once, before the scheduler's state is
/// published, so before any M. The crate root is the one place that knows
/// both sides; no module below it imports a module above its layer.
fn wire() {
    engine::hooks::set_hooks(engine::hooks::Hooks {
        check_dead: deadlock::check_dead,
        thread_limit_stall: sysmon::thread_limit_stall,
    });
}

/// Starts what runs beside the scheduler once it exists: the exit hook, the
/// fork guard, the spare extra M (foreign threads may call in from now on),
/// sysmon.
fn start_satellites() {
    callback::register_exit_hook();
    fork::register();
    extram::ensure_spare();
    sysmon::start();
}
