//! The runtime's one clock: `CLOCK_MONOTONIC`, in nanoseconds.
//!
//! Every time the scheduler keeps — timer deadlines, spin budgets, sysmon's
//! watches, the grace a thief gives a `runnext` — is a reading of this
//! clock, on the kernel's timeline (nanoseconds since boot), so any two of
//! them compare. Two readings:
//!
//! - [`nanotime`]: precise (a vDSO call, ~20 ns). Deadlines and intervals.
//! - `coarse_now`: one load of the last coarse reading
//!   (`CLOCK_MONOTONIC_COARSE`, the same clock at the kernel tick's
//!   resolution), refreshed by sysmon every round and by an M taking a P.
//!   For when a G started waiting, which dumps print in whole minutes (Go's
//!   `[chan receive, 3 minutes]`): reading the clock at every park cost
//!   ~13 ns of a channel hand-off. The crash handler reads
//!   `CLOCK_MONOTONIC_COARSE` itself to print those durations, which is
//!   why both readings stay on the kernel's timeline rather than on an
//!   epoch of the runtime's own.
//!
//! `Instant`s convert both ways ([`instant_of`], [`nanotime_of`]): std's
//! `Instant` reads the same clock.
//!
//! Data layer: calls nothing else of the scheduler.

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A time that never comes: "no deadline", "no timer pending".
pub const NEVER: u64 = u64::MAX;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; both clocks exist on every Linux
    // this runs on, so the call cannot fail.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds of the runtime clock (`CLOCK_MONOTONIC`).
#[inline]
pub fn nanotime() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// One `Instant` and the runtime-clock time it stands for, read together
/// once, to convert between the two.
fn anchor() -> (Instant, u64) {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    *ANCHOR.get_or_init(|| (Instant::now(), nanotime()))
}

/// The instant `t` of the runtime clock stands for.
pub fn instant_of(t: u64) -> Instant {
    let (i, at) = anchor();
    if t >= at {
        i.checked_add(Duration::from_nanos(t - at))
            .unwrap_or_else(|| i + Duration::from_secs(u64::from(u32::MAX)))
    } else {
        i.checked_sub(Duration::from_nanos(at - t)).unwrap_or(i)
    }
}

/// The runtime-clock time of `i` (saturating: never [`NEVER`], never
/// below 0).
pub fn nanotime_of(i: Instant) -> u64 {
    let (a, at) = anchor();
    match i.checked_duration_since(a) {
        Some(d) => at
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1))
            .min(NEVER - 1),
        None => {
            at.saturating_sub(u64::try_from(a.duration_since(i).as_nanos()).unwrap_or(u64::MAX))
        }
    }
}

/// The last coarse reading (see the module docs); 0 before the first.
/// sysmon may sleep deeply only while every P is idle, an M that runs Gs
/// took its P after the last idle stretch, and sysmon refreshes the value
/// at least every 10 ms while any P is busy.
static COARSE_NS: AtomicU64 = AtomicU64::new(0);

/// Re-reads the coarse clock for [`coarse_now`].
pub(crate) fn refresh_coarse_now() {
    COARSE_NS.store(read(libc::CLOCK_MONOTONIC_COARSE), Ordering::Relaxed);
}

/// The runtime clock to the last few milliseconds, for wait durations (see
/// the module docs).
#[inline]
pub(crate) fn coarse_now() -> u64 {
    match COARSE_NS.load(Ordering::Relaxed) {
        0 => {
            refresh_coarse_now();
            COARSE_NS.load(Ordering::Relaxed)
        }
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Symptom guarded: the runtime clock and `Instant` drift apart, so a
    /// `recv_deadline` wakes early or late by the difference.
    #[test]
    fn instants_convert_both_ways() {
        let now = Instant::now();
        let t = nanotime_of(now);
        let back = instant_of(t);
        let diff = if back > now { back - now } else { now - back };
        assert!(diff < Duration::from_micros(100), "{diff:?} apart");
        let later = now + Duration::from_secs(5);
        assert_eq!(nanotime_of(later) - t, 5_000_000_000);
        assert!(nanotime() >= t);
    }

    /// Symptom guarded: the coarse reading is on another timeline than the
    /// precise one (a wait since "boot" printed as 20,000 minutes).
    #[test]
    fn coarse_and_precise_readings_share_a_timeline() {
        refresh_coarse_now();
        let c = coarse_now();
        let n = nanotime();
        // Coarse lags by at most a tick (≤ 10 ms at HZ=100), never leads.
        assert!(
            c <= n + 1_000_000 && n - c < 50_000_000,
            "coarse {c}, precise {n}"
        );
    }
}
