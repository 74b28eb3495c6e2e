//! The engine: switching Gs, finding work, spinning and parking, the life
//! cycles of Ms and Gs, and the hand-off of Ps.
//!
//! The engine sits on the data layer (`g`, `m`, `p`, `runq`, `state`,
//! `timer_heap`, `clock`, `mlist`, `bell`, …, which call no scheduling
//! logic) and under the satellites (timers, netpoll, sysmon, preemption's
//! demotions, extra Ms and callbacks, deadlock detection, spawn, syscalls,
//! wait queues, channels). Satellites call the engine only through the
//! items this module re-exports — its narrow API — and the engine never
//! names a satellite: where it needs one (polling sockets while it looks
//! for work, the deadlock check before an M sleeps, a warning at the thread
//! limit) it calls a hook the satellite registered at start-up
//! ([`hooks`]). The rooms below are private to the engine (`pub(super)`),
//! so a satellite cannot reach past the API; `scheduler/tests/module_graph.rs`
//! checks the rest of the direction and `docs/design.md` ("Module map")
//! draws it.
//!
//! Rooms, in reading order:
//!
//! - `switch.rs`: park, ready, yield; the G-to-G and G-to-`g0` switches and
//!   the work a switch leaves for the next context (`finish_switch`).
//! - `glife.rs`: a G's first frame (and the warm stack it trades for),
//!   entry, exit, and the free lists of G structs.
//! - `find.rs`: `find_runnable` — local, global, timers, netpoll,
//!   stealing, the `runnext` grace period — and the spin budget.
//! - `handoff.rs`: taking, releasing and handing off Ps; waking an M for
//!   new work (`wakep`); stopping an M until it is given a P.
//! - `mloop.rs`: an M's thread — creation, the loop on `g0`, exit.
//! - `lend.rs`: the P an M lends while its G runs user code, taken back at
//!   the G's next runtime call (its own essay), and the way back for a G
//!   whose P was retaken.
//! - [`hooks`]: what the engine calls in satellites.
//! - `tests.rs`: unit tests of the hand-shakes on real Ms and Ps (park
//!   racing ready, the `runnext` hand-off, a P handed off from a system
//!   call, a lent P retaken and taken back).
//!
//! # Switching
//!
//! A G gives up its M by [`park`], [`yield_now`] or exit. The M first looks
//! at its P's local queue: if a G is there (and nothing forces the slow
//! path, see `next_fast` in `switch.rs`) it switches **straight to that G**. Otherwise it
//! switches to the M's `g0` context, which runs `schedule` (`mloop.rs`): find work
//! (local queue, global queue, timers, stealing), or put the P and the M to
//! sleep.
//!
//! Whatever the switch did, the G that left is not yet visible to anyone: its
//! registers were being saved. The M records what to do with it in
//! `m.pending` (requeue, park + unlock, recycle), and the context that runs
//! next on the M completes it right after the switch (`finish_switch`).
//! That is the only place a G becomes visible to other Ms after leaving one.
//!
//! # Spinning and parking (no lost wake-ups)
//!
//! An M without work *spins* (steals from other Ps) before sleeping, and at
//! most about half the busy Ps have a spinning M. Work producers (spawn,
//! `ready`) push the G and then, after a StoreLoad barrier, wake an M only
//! if a P is idle and nobody spins. An M that stops spinning decrements
//! `nmspinning`; if it was the last spinner, it runs a StoreLoad barrier and
//! re-checks every queue before it sleeps (a producer that saw another
//! spinner relies on that one, which is last in its turn). Either the
//! producer sees `nmspinning == 0` and wakes someone, or the last spinner
//! sees the work: the two barriers forbid both missing each other
//! (the StoreLoad pattern Go uses in `findRunnable`/`wakep`). Producers are
//! the hot side and pay a compiler barrier; the M about to sleep pays
//! `membarrier` (`barrier.rs`). A spinning M that finds work wakes another
//! spinner in its place (`reset_spinning`), so bursts spread across Ps.
//!
//! Rejected: waking an M on every push (thundering herd and ~1 µs per
//! spawn); a condition variable shared by all Ms (no per-P hand-off).

mod find;
mod glife;
mod handoff;
pub mod hooks;
mod lend;
mod mloop;
mod switch;
#[cfg(test)]
mod tests;

// The narrow API. Users of the scheduler crate: parking and readying Gs,
// yielding, locking a G to its thread.
pub use switch::{lock_os_thread, park, ready, unlock_os_thread, yield_now};

// For satellites: the M and P hand-offs they drive (sysmon's retakes,
// syscalls, callbacks on extra Ms), the G life cycle pieces spawn needs,
// and the runtime calls that take a lent P back.
pub(crate) use find::{earliest_timer, work_anywhere};
pub(crate) use glife::{first_frame, gfget, gfput, no_warm_stacks};
pub(crate) use handoff::{AtLimit, hand_off_p_or, wakep, wakep_if_idle};
pub(crate) use lend::{enter, enter_or_wait, exit_syscall_slow, leave, leave_on};
// preempt.rs's test races the two sides of a demotion.
#[cfg(test)]
pub(crate) use lend::back_from_retake;
pub(crate) use mloop::{give_up_p, run_locked_until};
pub(crate) use switch::{resumed, switch_from_g};
