//! Per-M state of the crash-tracing layer, hung on `M::sig_slot` when the
//! M starts: its alternate signal stack, its thread's stack bounds, and
//! where it stands in the crash relay. Data: the relay's protocol is in
//! [`crate::relay`]; nothing here calls above [`crate::altstack`].

use crate::altstack;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use scheduler::m::M;

/// Where an M stands in the crash relay ([`crate::relay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RelayState {
    /// Not part of a relay (the state every M starts, or binds again, in).
    Idle = 0,
    /// The crasher sent this M's thread the relay's SIGQUIT and waits for
    /// its section.
    Asked = 1,
    /// This M's section is printed (the crasher's own dump counts).
    Dumped = 2,
}

/// A [`RelayState`] shared between the crasher and the M it asks.
#[derive(Debug)]
pub struct AtomicRelayState(AtomicU32);

impl AtomicRelayState {
    const fn new(s: RelayState) -> AtomicRelayState {
        AtomicRelayState(AtomicU32::new(s as u32))
    }

    /// The state, with `order` as for an atomic load.
    pub fn load(&self, order: Ordering) -> RelayState {
        match self.0.load(order) {
            0 => RelayState::Idle,
            1 => RelayState::Asked,
            _ => RelayState::Dumped,
        }
    }

    /// Sets the state, with `order` as for an atomic store.
    pub fn store(&self, s: RelayState, order: Ordering) {
        self.0.store(s as u32, order);
    }
}

/// Per-M state of the crash-tracing layer.
#[derive(Debug)]
pub struct PerM {
    /// Base of the signal stack's mapping (guard page included) and its
    /// length.
    map: (usize, usize),
    /// Crash relay progress.
    pub relay: AtomicRelayState,
    /// `[lo, hi)` of the thread's own stack (for unwinding g0 and C frames);
    /// refreshed each time the M binds a thread.
    stack: [AtomicUsize; 2],
}

/// The per-M state of `m`, if its start hook ran. Async-signal-safe.
pub fn of(m: &M) -> Option<&'static PerM> {
    let p = m.sig_slot.load(Ordering::Acquire).cast::<PerM>();
    // SAFETY: only `on_m_start` stores here, a leaked &'static PerM.
    unsafe { p.as_ref() }
}

/// `[lo, hi)` of the thread stack of `m`, if known. Async-signal-safe.
pub fn thread_stack(m: &M) -> Option<(usize, usize)> {
    let per = of(m)?;
    let (lo, hi) = (
        per.stack[0].load(Ordering::Relaxed),
        per.stack[1].load(Ordering::Relaxed),
    );
    (lo < hi).then_some((lo, hi))
}

/// M start hook: the M's state (made on its first start, kept for an extra
/// M's later bindings), reset for this thread, and its signal stack
/// enabled on the calling thread.
pub fn on_m_start(m: &M) {
    let per = match of(m) {
        // An extra M bound again: reuse its state and stack.
        Some(per) => per,
        None => {
            let Some(map) = altstack::map() else { return };
            let per: &'static PerM = Box::leak(Box::new(PerM {
                map,
                relay: AtomicRelayState::new(RelayState::Idle),
                stack: [const { AtomicUsize::new(0) }; 2],
            }));
            m.sig_slot
                .store((per as *const PerM).cast_mut().cast(), Ordering::Release);
            per
        }
    };
    per.relay.store(RelayState::Idle, Ordering::Relaxed);
    let (lo, hi) = altstack::calling_thread_stack().unwrap_or((0, 0));
    per.stack[0].store(lo, Ordering::Relaxed);
    per.stack[1].store(hi, Ordering::Relaxed);
    altstack::enable(per.map);
}

/// M exit hook: stop using the signal stack (kept for the M's next thread,
/// if it is an extra M).
pub fn on_m_exit(_m: &M) {
    altstack::disable();
}
