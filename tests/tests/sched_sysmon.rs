//! sysmon keeps blocking code from stalling the scheduler: with one P, a G
//! that blocks its M (`std::thread::sleep`) or loops without a runtime call
//! loses the P to another M after about a slice. Each test runs a scenario
//! in a child process with `GORT_MAXPROCS=1`.

use std::sync::Mutex;
use std::time::Duration;
use tests::{Outcome, scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

/// Under qemu-user the scenarios run one at a time: each measures how long
/// Gs wait for one P, and three emulated processes on two cores measure the
/// host's load instead.
static QEMU_ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(name: &str) -> Outcome {
    let limit = Duration::from_secs(if under_qemu() { 120 } else { 30 });
    let _one = under_qemu().then(|| QEMU_ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()));
    let o = scenario(BIN, name, &[("GORT_MAXPROCS", "1")], limit);
    o.assert_success();
    o
}

/// Threads a scenario may end with. qemu-user's own locks put emulated
/// threads to sleep in futexes, which sysmon reads as kernel blocks and
/// answers with a thread of its own now and then.
fn thread_bound() -> usize {
    if under_qemu() { 16 } else { 8 }
}

#[test]
fn thread_sleep_does_not_stop_other_gs() {
    let o = run("sysmon_thread_sleep");
    let (others, sleeper): (u64, u64) = (o.parse("others_ms"), o.parse("sleeper_ms"));
    assert!(sleeper >= 1000, "{o}");
    // They finish well before the sleeper wakes (a slice is ~10 ms).
    assert!(others + 300 < sleeper, "others waited for the sleeper\n{o}");
    let threads: usize = o.parse("threads");
    assert!(threads <= thread_bound(), "thread count not bounded\n{o}");
}

#[test]
fn busy_loop_does_not_stall_others_beyond_a_slice() {
    let o = run("sysmon_busy_loop");
    let (others, busy): (u64, u64) = (o.parse("others_ms"), o.parse("busy_ms"));
    assert!(busy >= 1500, "{o}");
    // 100 Gs x 5 naps of 1 ms: tens of ms alone; generous for a noisy
    // machine, and well under the 1.5 s loop.
    let bound = if under_qemu() { 1400 } else { 1000 };
    assert!(others < bound, "others stalled behind the busy loop\n{o}");
    let threads: usize = o.parse("threads");
    assert!(threads <= thread_bound(), "thread count not bounded\n{o}");
}

#[test]
fn preempt_point_gives_the_thread_up() {
    let o = run("sysmon_preempt_point");
    let (others, busy): (u64, u64) = (o.parse("others_ms"), o.parse("busy_ms"));
    // The loop runs 1 s (4 s under qemu-user); the others must not wait
    // for its end.
    let (looped, bound) = if under_qemu() {
        (4000, 3000)
    } else {
        (1000, 700)
    };
    assert!(busy >= looped, "{o}");
    assert!(others < bound, "others stalled behind the loop\n{o}");
    let threads: usize = o.parse("threads");
    assert!(threads <= thread_bound(), "thread count not bounded\n{o}");
}
