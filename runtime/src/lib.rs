//! gort: Go-style green threads for Rust.
//!
//! [`go`] starts a G, a green thread that runs ordinary blocking Rust code.
//! When it blocks in the runtime ([`JoinHandle::join`], [`sleep`],
//! [`sync::WaitGroup::wait`], ...) the G parks and its OS thread runs other
//! Gs. Gs run on an M:N scheduler: Ms (OS threads) holding Ps (the right to
//! run Gs; [`Builder::procs`], `GORT_MAXPROCS`), with per-P run queues and
//! work stealing. A million parked Gs fit in a few GiB.
//!
//! ```
//! let handles: Vec<_> = (0..1000u64).map(|i| runtime::go(move || i * 2)).collect();
//! let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(sum, 999_000);
//! ```
//!
//! Modules, in reading order:
//!
//! - this page: spawning ([`go`], [`try_go`], [`GoBuilder`]), joining
//!   ([`JoinHandle`]), the current G ([`current`], [`yield_now`], [`sleep`],
//!   [`lock_os_thread`]), configuration ([`Builder`]) and [`stats`];
//! - [`chan`], [`select!`] and [`select_biased!`]: Go's channels and `select`;
//! - [`time`]: `after`, tickers and deadlines on the scheduler's timers;
//! - [`sync`]: primitives that park Gs instead of threads (`Mutex`,
//!   `RwLock`, `Condvar`, `WaitGroup`, `Once`, `OnceLock`, `LazyLock`,
//!   `Barrier`, `Semaphore`);
//! - [`net`]: TCP, UDP and Unix sockets that park Gs on the netpoller,
//!   sockets handed in as descriptors, readiness waits on any descriptor
//!   ([`net::PollFd`]), Go's deadlines;
//! - [`ffi`]: callbacks from foreign (C) threads and calls out
//!   ([`syscall`]); the C ABI is the `gort-capi` package;
//! - [`process`] and [`signal`]: child processes whose waits and pipes park
//!   Gs (Go's `os/exec`), OS signals on channels (Go's `os/signal`);
//! - living with other crates: [`block_on`] (futures), [`g_local!`] (G-local
//!   storage), [`scope`] (Gs that borrow), [`ThreadBound`].
//!
//! # Rules for code running in a G
//!
//! - Blocking std calls (`std::thread::sleep`, std sockets, `std::sync`
//!   locks held for long) block the M: after about 10 ms the monitor thread
//!   hands its P to another M so the other Gs run on, but the M stays
//!   blocked. Use the runtime's versions ([`sleep`], [`net`], [`sync`]).
//! - Scheduling is cooperative: a G that loops without a runtime call loses
//!   its P after a ~10 ms slice only if other Gs wait; call
//!   [`preempt_point`] (one load) or [`yield_now`] in long computations.
//! - Futures from async crates are awaited with [`block_on`], which parks
//!   the G; futures bound to a tokio runtime run on that runtime (see
//!   "Async crates" in `docs/guide.md`).
//!
//! # Soundness
//!
//! A G may continue on another OS thread after any call that can park
//! (join, sleep, yield, a lock or channel wait, socket I/O, [`block_on`]).
//! [`go`] is safe, but its contract is: **no value tied to the current OS
//! thread may be alive across such a call**, unless the G called
//! [`lock_os_thread`] first. Such values are:
//!
//! - borrows of a `std::thread_local!` and values got from one (an `Rc` to
//!   thread-local state, e.g. `rand::thread_rng()`; the thread-local cache
//!   of an allocator-like crate);
//! - std's `MutexGuard`/`RwLockReadGuard`/`RwLockWriteGuard` (unlocked on
//!   another thread; also blocks the M while held);
//! - `tracing` span guards (`span.enter()`), which record the span as the
//!   thread's current one;
//! - thread-affine C state (OpenGL contexts, some database client handles).
//!
//! Use instead: [`g_local!`] for per-G state (`rand::rngs::StdRng` in a
//! `g_local!`, not `thread_rng()`), [`sync`]'s locks, `tracing`'s
//! `Instrument`-free style of entering a span only around code that does not
//! park (or `span.in_scope(...)` around such code), or [`lock_os_thread`].
//! Mark a thread-bound value you must keep with a [`ThreadBound`]: debug
//! builds then stop the program, naming the marker's line, when its G parks
//! with it live. Why `go` stays safe rather than `unsafe` (as `may::go!`):
//! "Why `go` stays safe" in `docs/design.md`.
//!
//! Design: `docs/design.md`.
// Unsafe code only where a contract demands it: `ffi`, the lifetime
// erasure in `scope`, and `FromRawFd` in `net`.
#![deny(unsafe_code)]

mod builder;
pub mod chan;
pub mod ffi;
mod future;
mod glocal;
mod join;
pub mod net;
pub mod process;
mod scope;
pub mod signal;
pub mod sync;
pub mod time;

pub use builder::{BuildError, Builder};
pub use future::block_on;
pub use join::{GoBuilder, JoinHandle};
pub use scheduler::config::ConfigError;
pub use scheduler::stack::{GuardKind, StackError};
pub use scheduler::{GLocal, ThreadBound};
pub use scheduler::{SpawnError, Stats};
pub use scope::{Scope, ScopedJoinHandle, scope};
pub use signals::Level as TracebackLevel;

/// Sets up what must exist before the first M starts: crash tracing
/// (signal handlers, per-M signal stacks, M hooks) and the panic hook that
/// names Gs. Idempotent and cheap.
#[inline]
pub(crate) fn ensure_started() {
    signals::init();
    join::install_panic_hook();
}

/// Raises the crash traceback level (as `GORT_TRACEBACK`) to at least
/// `level`; it never goes below what the environment set. Returns the level
/// in force.
pub fn set_traceback(level: TracebackLevel) -> TracebackLevel {
    ensure_started();
    signals::set_traceback(level)
}

use std::sync::Arc;
use std::time::Duration;

/// Starts a G running `f` and returns a handle to join it.
///
/// The runtime starts on first use with the environment's configuration
/// (`GORT_MAXPROCS`, `GORT_STACK_SIZE`, `GORT_MAX_THREADS`) unless
/// [`Builder::build`] ran first.
///
/// # Panics
///
/// If the G cannot be created (no memory for its stack, or the configured
/// stack limit); [`try_go`] returns that error instead.
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match try_go(f) {
        Ok(h) => h,
        Err(e) => panic!("runtime::go: {e}"),
    }
}

/// Starts a G running `f`, or says why it cannot: a stack could not be made
/// (the error names the cause, e.g. `vm.max_map_count` or the configured
/// stack limit). Nothing is started and nothing leaks on error.
#[track_caller]
pub fn try_go<F, T>(f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    GoBuilder::new().spawn(f)
}

/// Runs `f`, a call that may block in the kernel or in C, with the calling
/// G's P set aside: if `f` lasts (over ~20 µs while other Gs wait), the
/// monitor thread hands the P to another M so the other Gs keep running. On
/// return the G takes a P back (its old one if still free). About 10 ns when
/// `f` is short. On a plain thread it just calls `f`.
#[inline]
pub fn syscall<R>(f: impl FnOnce() -> R) -> R {
    scheduler::syscall(f)
}

/// A cheap scheduling point for long computations: if the monitor thread
/// took this G's P away (it kept it a whole ~10 ms slice while other Gs
/// waited), give the thread up now; otherwise one load. See
/// "Blocking code and sysmon" in `docs/guide.md`. No effect on a plain
/// thread.
#[inline]
pub fn preempt_point() {
    scheduler::preempt_point();
}

/// Lets other Gs run; returns at once if none is runnable. On a plain
/// thread, yields the thread.
pub fn yield_now() {
    scheduler::yield_now();
}

/// Parks the calling G for at least `d`; its M runs other Gs meanwhile.
/// Timers belong to the scheduler (no thread per timer). On a plain thread,
/// sleeps the thread.
pub fn sleep(d: Duration) {
    scheduler::sleep(d);
}

/// Identity of a running G.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// The G's id (Go's goroutine id), unique while the G lives.
    pub id: u64,
    /// The name given at spawn, if any.
    pub name: Option<Arc<str>>,
}

/// The G running the caller, or `None` on a plain thread.
pub fn current() -> Option<Current> {
    scheduler::current_g().map(|g| Current {
        id: g.goid(),
        name: g.name(),
    })
}

/// Wires the calling G to its current OS thread until [`unlock_os_thread`]
/// (calls nest): the G runs only on this thread and the thread runs no other
/// G. For thread-affine libraries and thread-local state. A G that exits
/// while locked takes its thread with it (a new one replaces it), as in Go.
/// No effect on a plain thread.
pub fn lock_os_thread() {
    scheduler::lock_os_thread();
}

/// Undoes one [`lock_os_thread`].
pub fn unlock_os_thread() {
    scheduler::unlock_os_thread();
}

/// Writes every G's stack to `w`, in the crash dump's format with the same
/// grouping of identical stacks, while the program keeps running (Go's
/// `runtime.Stack(buf, true)`; [`dump_fd`], and `gort_dump(fd)` from C). Parked Gs are read
/// from their saved contexts without stopping them; a G running on an M is
/// walked by that M in a signal handler, which pauses that one thread for
/// the length of the walk. Runtime frames are hidden unless
/// `GORT_TRACEBACK=system`. The dump is prepared in an anonymous memory
/// file and then copied to `w`.
///
/// ```
/// let h = runtime::go(|| runtime::sleep(std::time::Duration::from_secs(1)));
/// while runtime::stats().waiting_gs == 0 {
///     std::thread::yield_now();
/// }
/// let mut out = Vec::new();
/// runtime::dump(&mut out).unwrap();
/// let text = String::from_utf8_lossy(&out);
/// assert!(text.contains("goroutine "));
/// # drop(h);
/// ```
pub fn dump(w: &mut impl std::io::Write) -> std::io::Result<DumpStats> {
    ensure_started();
    signals::live::dump(w)
}

/// [`dump`] straight to a descriptor (no memory file in between): what
/// `gort_dump(fd)` calls. Fails with `InvalidInput` unless `fd` is open
/// for writing.
pub fn dump_fd(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<DumpStats> {
    use std::os::fd::AsRawFd;
    if !signals::live::writable_fd(fd.as_raw_fd()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "runtime::dump_fd: the descriptor is not open for writing",
        ));
    }
    ensure_started();
    Ok(signals::live::dump_fd(fd.as_raw_fd()))
}

pub use signals::live::DumpStats;

/// A snapshot of the runtime: Ps, Ms, Gs by status, stacks. Starts the
/// runtime if it has not started.
pub fn stats() -> Stats {
    ensure_started();
    scheduler::stats()
}
