//! Time: sleeping, one-shot timer channels and tickers, all on the
//! scheduler's per-P timers (no thread per timer; a timer firing readies a
//! parked G through the scheduler, or wakes a blocked thread).
//!
//! - [`sleep`], [`sleep_until`]: park the calling G (block a plain thread).
//! - [`after`]: a channel that receives the time once, after a delay (Go's
//!   `time.After`). The channel holds one value and never closes.
//! - [`Ticker`] / [`tick`]: a channel that receives the time every period;
//!   ticks a slow receiver misses are dropped, as in Go (the channel holds
//!   one).
//! - Deadline-aware waits: `Receiver::recv_timeout`/`recv_deadline`,
//!   `Sender::send_timeout`/`send_deadline`, and the `timeout`/`deadline`
//!   arms of [`select!`](crate::select!).
//!
//! Timer functions run on the scheduler's own context, so they only ever
//! `try_send` (never block): a full ticker channel drops the tick.
//!
//! Rejected: a timer thread (Go before 1.14, and `std`-based timer
//! crates): one more thread, a cross-thread wake-up per firing, and timers
//! that fire while every P sleeps would need it to wake an M anyway. The
//! scheduler already sleeps exactly until its earliest timer, so timers
//! belong there.

use crate::chan::{Receiver, Sender, TrySendError};
use scheduler::clock::{nanotime, nanotime_of};
use scheduler::lock_rank::{Rank, RankedMutex};
use scheduler::timer::{Timer, start_timer};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Parks the calling G for at least `d` (see [`crate::sleep`]).
pub fn sleep(d: Duration) {
    crate::sleep(d);
}

/// Parks the calling G until `deadline` (at once if it has passed).
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        crate::sleep(deadline - now);
    }
}

/// A channel that receives the current time once, `d` from now (Go's
/// `time.After`). It stays open afterwards: a second receive waits for
/// good. Dropping the receiver early leaves the timer to fire into a
/// channel nobody reads (cheap: no thread, one heap entry).
pub fn after(d: Duration) -> Receiver<Instant> {
    crate::ensure_started();
    let (tx, rx) = scheduler::chan::bounded_timer_channel(1);
    let when = deadline_of(d);
    let _timer = start_timer(
        when,
        Box::new(move |_| {
            let _ = tx.try_send(Instant::now());
        }),
    );
    rx
}

fn deadline_of(d: Duration) -> u64 {
    nanotime().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// [`Ticker::new`] and [`tick`] refuse a zero period (Go panics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroPeriod;

impl fmt::Display for ZeroPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ticker: the period must be positive")
    }
}

impl std::error::Error for ZeroPeriod {}

/// What a ticker's timer function shares with the [`Ticker`].
struct TickState {
    tx: Sender<Instant>,
    period: RankedMutex<u64>,
    /// The armed timer and its generation. Re-arming and stopping both
    /// happen under this lock, after checking `stopped`, so a stop never
    /// misses a re-arm; a tick of an older generation (a `reset` raced
    /// it) does nothing.
    timer: RankedMutex<(Option<Timer>, u64)>,
    stopped: AtomicBool,
}

impl TickState {
    /// Arms the next tick at `when`. Caller holds `timer`'s lock.
    fn arm(self: &Arc<Self>, slot: &mut (Option<Timer>, u64), when: u64) {
        let me = self.clone();
        let generation = slot.1;
        slot.0 = Some(start_timer(
            when,
            Box::new(move |due| me.fire(due, generation)),
        ));
    }

    /// A tick is due at `due`: deliver it (or drop it if the receiver is
    /// behind) and arm the next one on the period grid.
    fn fire(self: &Arc<Self>, due: u64, generation: u64) {
        let mut slot = self.timer.lock();
        if self.stopped.load(Ordering::Acquire) || slot.1 != generation {
            return;
        }
        if let Err(TrySendError::Closed(_)) = self.tx.try_send(Instant::now()) {
            // Every receiver is gone: nobody will ever read a tick.
            self.stopped.store(true, Ordering::Release);
            slot.0 = None;
            return;
        }
        let period = *self.period.lock();
        let now = nanotime();
        // The next point of the grid after now (skipping missed ones).
        let behind = now.saturating_sub(due) / period;
        let next = due.saturating_add(period.saturating_mul(behind + 1));
        self.arm(&mut slot, next);
    }
}

/// Delivers the time on a channel every period (Go's `time.Ticker`).
///
/// ```
/// use std::time::Duration;
/// let t = runtime::time::Ticker::new(Duration::from_millis(5)).unwrap();
/// let a = t.chan().recv().unwrap();
/// let b = t.chan().recv().unwrap();
/// assert!(b > a);
/// t.stop();
/// ```
pub struct Ticker {
    rx: Receiver<Instant>,
    state: Arc<TickState>,
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("period_ns", &*self.state.period.lock())
            .finish()
    }
}

impl Ticker {
    /// A ticker whose first tick comes `period` from now.
    pub fn new(period: Duration) -> Result<Ticker, ZeroPeriod> {
        let (rx, state) = start_ticks(period_ns(period)?);
        Ok(Ticker { rx, state })
    }

    /// The channel the ticks arrive on (Go's `ticker.C`).
    pub fn chan(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker: no tick is sent after `stop` returns (one sent
    /// before may still be buffered). The channel is not closed, as in Go.
    pub fn stop(&self) {
        self.state.stopped.store(true, Ordering::Release);
        if let Some(t) = self.state.timer.lock().0.take() {
            t.stop();
        }
    }

    /// Stops the ticker and restarts it with a new period, the next tick
    /// `period` from now.
    pub fn reset(&self, period: Duration) -> Result<(), ZeroPeriod> {
        let ns = period_ns(period)?;
        let mut slot = self.state.timer.lock();
        if let Some(t) = slot.0.take() {
            t.stop();
        }
        slot.1 += 1;
        *self.state.period.lock() = ns;
        self.state.stopped.store(false, Ordering::Release);
        self.state.arm(&mut slot, nanotime().saturating_add(ns));
        Ok(())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn period_ns(period: Duration) -> Result<u64, ZeroPeriod> {
    match u64::try_from(period.as_nanos()) {
        Ok(0) => Err(ZeroPeriod),
        Ok(ns) => Ok(ns),
        Err(_) => Ok(u64::MAX / 2),
    }
}

/// A channel of ticks every `period` (Go's `time.Tick`). The ticker stops
/// by itself once the receiver (and all its clones) is dropped.
pub fn tick(period: Duration) -> Result<Receiver<Instant>, ZeroPeriod> {
    Ok(start_ticks(period_ns(period)?).0)
}

/// A tick channel (one slot, as Go's) and its timer state, the first tick
/// `ns` from now.
fn start_ticks(ns: u64) -> (Receiver<Instant>, Arc<TickState>) {
    crate::ensure_started();
    let (tx, rx) = scheduler::chan::bounded_timer_channel(1);
    let state = Arc::new(TickState {
        tx,
        period: RankedMutex::new(Rank::TickerPeriod, ns),
        timer: RankedMutex::new(Rank::TickerTimer, (None, 0)),
        stopped: AtomicBool::new(false),
    });
    let mut slot = state.timer.lock();
    state.arm(&mut slot, nanotime().saturating_add(ns));
    drop(slot);
    (rx, state)
}

/// The runtime-clock time of `i`, for code mixing `Instant`s with the
/// scheduler's clock.
#[doc(hidden)]
pub fn runtime_nanos(i: Instant) -> u64 {
    nanotime_of(i)
}
