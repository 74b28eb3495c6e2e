//! The atomics, fences and spin hints of the hand-shakes that are model
//! checked: std's in every build, [loom]'s in the scheduler's unit tests
//! built with `RUSTFLAGS="--cfg loom"` (the way tokio's `loom` module
//! does it). The model-checked tests then run the real protocol code —
//! [`RunQueue`](crate::runq::RunQueue)'s `runnext` hand-off and
//! [`P`](crate::p::P)'s lend/retake and syscall words — under every
//! interleaving and every weak-memory outcome loom explores, not a copy of
//! it.
//!
//! Under loom, [`crate::barrier`]'s `light` and `heavy` are both
//! `fence(SeqCst)`: the symmetric version of each protocol, which is what
//! the `membarrier` version guarantees too (the hot side is ordered as if
//! it had run a full fence where it runs `light`). Spins yield to loom's
//! scheduler, which otherwise would explore a spinning thread forever.
//!
//! Run them with (ci/test.sh does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!   cargo test -p gort-scheduler --lib --release --target-dir target/loom loom_
//! ```
//!
//! [loom]: https://docs.rs/loom

/// `AtomicBool`, `AtomicPtr`, `AtomicU64` and `fence` of the protocols
/// above.
pub(crate) mod atomic {
    #[cfg(not(all(test, loom)))]
    pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, fence};
    #[cfg(all(test, loom))]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, fence};
}

/// A busy-wait hint: the CPU's pause instruction; under loom, a yield to
/// the model's scheduler.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(all(test, loom)))]
    core::hint::spin_loop();
    #[cfg(all(test, loom))]
    loom::hint::spin_loop();
}

/// Gives the CPU up: `sched_yield`; under loom, a yield to the model's
/// scheduler.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(all(test, loom)))]
    std::thread::yield_now();
    #[cfg(all(test, loom))]
    loom::thread::yield_now();
}
