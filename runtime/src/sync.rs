//! Synchronisation that parks Gs, not threads.
//!
//! Each primitive works from a G (the G parks; its M runs other Gs) and from
//! a plain thread (the thread blocks).

use parking_lot::Mutex;
use scheduler::{WaitReason, Waiter};

/// Waits for a collection of Gs to finish, as Go's `sync.WaitGroup`:
/// [`add`](WaitGroup::add) the number of tasks, each calls
/// [`done`](WaitGroup::done), and [`wait`](WaitGroup::wait) returns when the
/// count reaches zero.
///
/// ```
/// use std::sync::Arc;
/// let wg = Arc::new(runtime::sync::WaitGroup::new());
/// for _ in 0..10 {
///     wg.add(1);
///     let wg = wg.clone();
///     runtime::go(move || wg.done());
/// }
/// wg.wait();
/// ```
#[derive(Debug, Default)]
pub struct WaitGroup {
    state: Mutex<WgState>,
}

#[derive(Debug, Default)]
struct WgState {
    count: i64,
    /// Bumped each time the count reaches zero and waiters are released.
    generation: u64,
    waiters: Vec<Waiter>,
}

impl WaitGroup {
    /// A group with count zero.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `delta` (which may be negative) to the count. When it reaches
    /// zero every waiter is released.
    ///
    /// # Panics
    ///
    /// If the count would go negative, as in Go.
    pub fn add(&self, delta: i64) {
        let waiters = {
            let mut st = self.state.lock();
            st.count += delta;
            if st.count < 0 {
                st.count -= delta;
                drop(st);
                panic!("sync: negative WaitGroup counter");
            }
            if st.count > 0 || st.waiters.is_empty() {
                return;
            }
            st.generation += 1;
            std::mem::take(&mut st.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Subtracts one from the count.
    pub fn done(&self) {
        self.add(-1);
    }

    /// The current count.
    pub fn count(&self) -> i64 {
        self.state.lock().count
    }

    /// Waits until the count is zero.
    pub fn wait(&self) {
        let mut st = self.state.lock();
        if st.count == 0 {
            return;
        }
        let generation = st.generation;
        st.waiters.push(Waiter::current());
        if scheduler::current_g().is_some() {
            scheduler::park_unlock(WaitReason::WaitGroup, st);
            return;
        }
        while st.generation == generation {
            drop(st);
            std::thread::park();
            st = self.state.lock();
        }
    }
}
