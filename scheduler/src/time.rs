//! Sleeping on the scheduler's timers.

use crate::g::WaitReason;
use crate::m::current_g;
use crate::sched::{sched, wakep};
use crate::schedule::{park, yield_now};
use crate::timer::nanotime;
use core::sync::atomic::Ordering;
use std::time::Duration;

/// Puts the calling G to sleep for at least `d` without holding its M. On a
/// plain thread, sleeps the thread.
pub fn sleep(d: Duration) {
    let Some(g) = current_g() else {
        return std::thread::sleep(d);
    };
    if d.is_zero() {
        return yield_now();
    }
    let when = nanotime().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    park(WaitReason::Sleep, move || {
        // We run on the next context of the same M: its P, or, if sysmon
        // took that P while the G ran, any P (timer heaps are locked).
        let p = crate::timer::host_p();
        let wake_someone = when < sched().sleep_until.load(Ordering::SeqCst);
        p.timers.add(when, g);
        // Past this point the G may be running again: touch nothing of it.
        if wake_someone {
            wakep();
        }
        true
    });
}
