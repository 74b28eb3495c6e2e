//! Clocks and sleeps the handler may use: `clock_gettime` and `nanosleep`,
//! both async-signal-safe. A helper: calls nothing else in this crate.

/// Now on `clock` (`CLOCK_MONOTONIC`, or `CLOCK_MONOTONIC_COARSE` for the
/// scheduler's coarse timestamps), in ns.
pub(crate) fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe; ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps this thread for `ns` (less if a signal interrupts the sleep).
pub(crate) fn sleep_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep is async-signal-safe; ts is a valid timespec.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}
