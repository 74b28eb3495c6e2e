//! Waiting for a `Future` from blocking code: [`block_on`].
//!
//! Async-only crates (HTTP clients, database drivers) hand out futures. A G
//! that needs one's result calls [`block_on`]: the future is polled on the
//! G's own stack, and while it is pending the G parks (holding no M and no
//! P) until the future's waker readies it. The waker may be called from any
//! thread (an I/O driver thread, a timer thread, another G), any number of
//! times, before or after the park.
//!
//! Futures tied to a tokio runtime (they need its reactor) must be polled
//! where that reactor runs: spawn them on the tokio runtime's handle and
//! `block_on` the `JoinHandle` tokio returns (see "Async crates" in
//! `docs/guide.md`).
//!
//! # The parker's protocol
//!
//! One state word per call: `EMPTY` (no wake since the last poll),
//! `NOTIFIED` (a wake came in), `PARKED` (the G is parked and the next wake
//! must ready it). The G resets the word to `EMPTY` before each poll, so a
//! wake during the poll leaves `NOTIFIED`. After a `Pending` poll it parks,
//! and inside the park (its context saved) tries `EMPTY → PARKED`: if a wake
//! came in meanwhile the exchange fails and the park is cancelled. A waker
//! swaps in `NOTIFIED` and readies the G only if it took `PARKED` out, so
//! exactly one waker readies each park. A waker kept by the future after
//! `block_on` returned finds `EMPTY` or `NOTIFIED`, never `PARKED`, and does
//! nothing: it cannot ready the G while it waits for something else.

use scheduler::{GRef, WaitReason};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

const EMPTY: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKED: u8 = 2;

/// Who to wake: the G that called `block_on`, or the plain thread.
enum Sleeper {
    G(GRef),
    Thread(std::thread::Thread),
}

struct Parker {
    state: AtomicU8,
    sleeper: Sleeper,
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match &self.sleeper {
            Sleeper::G(g) => {
                if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
                    scheduler::ready(*g);
                }
            }
            Sleeper::Thread(t) => {
                self.state.store(NOTIFIED, Ordering::Release);
                t.unpark();
            }
        }
    }
}

/// Runs `future` to completion and returns its output. On a G, the G parks
/// while the future is pending (its M runs other Gs) and its waker makes it
/// runnable again; on a plain thread, the thread blocks.
///
/// A panic in the future's `poll` unwinds out of `block_on`.
///
/// ```
/// let h = runtime::go(|| runtime::block_on(async { 6 * 7 }));
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let parker = Arc::new(Parker {
        state: AtomicU8::new(EMPTY),
        sleeper: match scheduler::current_g() {
            Some(g) => Sleeper::G(g),
            None => Sleeper::Thread(std::thread::current()),
        },
    });
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        parker.state.store(EMPTY, Ordering::Release);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        match parker.sleeper {
            Sleeper::G(_) => scheduler::park(WaitReason::Future, || {
                // Last touch of the parker by this G until it is readied.
                parker
                    .state
                    .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            }),
            Sleeper::Thread(_) => {
                while parker.state.load(Ordering::Acquire) == EMPTY {
                    std::thread::park();
                }
            }
        }
    }
}
