//! What the engine calls in satellites, registered by them: the engine
//! never names a satellite module, so the direction of the crate (data ←
//! engine ← satellites) holds, and a satellite that is not in use costs
//! the engine one load.
//!
//! Two registrations:
//!
//! - [`Hooks`], once, by the crate root's `wire()` before the scheduler's
//!   state is published (so before any M runs): the deadlock check and
//!   sysmon's warning at the thread limit.
//! - [`Poller`], by the netpoller when its first socket registers (before
//!   any G can wait for I/O): polling while an M looks for work, blocking
//!   in the poller instead of sleeping, interrupting a blocked poll.

use crate::g::GRef;
use std::sync::OnceLock;

/// The satellites' side of the engine's slow paths.
#[derive(Debug)]
pub struct Hooks {
    /// An M is about to sleep with no timer pending (`deadlock.rs`): report
    /// a deadlock if nothing can ever run again. The argument asks sysmon
    /// to look again during its quiet rounds if the check was unsure.
    pub check_dead: fn(bool),
    /// A P stays with a blocked M because a new thread would exceed
    /// `max_threads` (`sysmon.rs` counts it and warns once).
    pub thread_limit_stall: fn(),
}

/// The netpoller's side of `find_runnable`.
#[derive(Debug)]
pub struct Poller {
    /// Gs parked waiting for I/O.
    pub waiting: fn() -> usize,
    /// Non-blocking poll: appends the Gs whose sockets are ready (made
    /// runnable) to the vector.
    pub poll_ready: fn(&mut Vec<GRef>),
    /// Blocks in the poller until an event, the deadline (runtime clock) or
    /// a wake-up, if Gs wait for I/O and no other M is blocked there;
    /// appends the Gs woken. Returns false if it did not block.
    pub try_block: fn(u64, &mut Vec<GRef>) -> bool,
    /// Whether an M is blocked in the poller.
    pub blocked: fn() -> bool,
    /// Interrupts a blocked poll.
    pub wake: fn(),
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();
static POLLER: OnceLock<&'static Poller> = OnceLock::new();

/// What the engine does without registered hooks (unit tests that run
/// engine pieces without the crate root's wiring): no deadlock check, no
/// warning.
static NONE: Hooks = Hooks {
    check_dead: |_| {},
    thread_limit_stall: || {},
};

/// Registers the hooks (the first registration stands).
pub fn set_hooks(h: Hooks) {
    let _ = HOOKS.set(h);
}

/// Registers the netpoller (the first registration stands).
pub fn set_poller(p: &'static Poller) {
    let _ = POLLER.set(p);
}

/// The registered hooks.
#[inline]
pub(crate) fn get() -> &'static Hooks {
    HOOKS.get().unwrap_or(&NONE)
}

/// The netpoller, once a socket has registered.
#[inline]
pub(crate) fn poller() -> Option<&'static Poller> {
    POLLER.get().copied()
}
