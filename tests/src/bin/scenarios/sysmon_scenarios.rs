//! Blocking code inside Gs: sysmon must keep it from stalling the others.
//! Each scenario runs with `GORT_MAXPROCS=1`, so a G that keeps its M
//! without a runtime call would stop every other G without sysmon.

use runtime::sync::WaitGroup;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Starts `n` Gs that each sleep a little `rounds` times (runtime sleeps,
/// so they need the P between naps) and returns when all are done.
fn run_others(n: usize, rounds: usize) {
    let wg = Arc::new(WaitGroup::new());
    for _ in 0..n {
        wg.add(1);
        let wg = wg.clone();
        runtime::go(move || {
            for _ in 0..rounds {
                runtime::sleep(Duration::from_millis(1));
                // A little work between naps.
                let mut x = 0u64;
                for i in 0..1000u64 {
                    x = x.wrapping_add(std::hint::black_box(i));
                }
                std::hint::black_box(x);
            }
            wg.done();
        });
    }
    wg.wait();
}

/// Waits until `flag` is set by a G that is about to block.
fn wait_started(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let it get into the blocking call.
    std::thread::sleep(Duration::from_millis(5));
}

/// Symptom guarded: one G calling `std::thread::sleep` (blocking its M
/// without a runtime call) stops every other G of its P for the whole sleep.
pub fn thread_sleep() {
    let n = if tests::under_qemu() { 200 } else { 1000 };
    let t0 = Instant::now();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let sleeper = runtime::go(move || {
        s.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(1));
        t0.elapsed()
    });
    wait_started(&started);
    run_others(n, 1);
    let others = t0.elapsed();
    let sleeper = sleeper.join().unwrap();
    println!("others_ms={}", others.as_millis());
    println!("sleeper_ms={}", sleeper.as_millis());
    println!("threads={}", runtime::stats().threaded_ms());
}

/// Symptom guarded: a G in a long loop without any runtime call keeps the
/// only P; the others wait until it ends.
pub fn busy_loop() {
    let t0 = Instant::now();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let busy = runtime::go(move || {
        s.store(true, Ordering::SeqCst);
        let end = Instant::now() + Duration::from_millis(1500);
        let mut spins = 0u64;
        while Instant::now() < end {
            spins = std::hint::black_box(spins + 1);
        }
        t0.elapsed()
    });
    wait_started(&started);
    run_others(100, 5);
    let others = t0.elapsed();
    let busy = busy.join().unwrap();
    println!("others_ms={}", others.as_millis());
    println!("busy_ms={}", busy.as_millis());
    println!("threads={}", runtime::stats().threaded_ms());
}

/// Symptom guarded: a loop that calls `preempt_point` never gives its
/// thread up, or giving it up loses the G.
pub fn preempt_point() {
    let t0 = Instant::now();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let busy = runtime::go(move || {
        s.store(true, Ordering::SeqCst);
        // Longer under qemu-user, where the 100 others run 10-50x slower.
        let ms = if tests::under_qemu() { 4000 } else { 1000 };
        let end = Instant::now() + Duration::from_millis(ms);
        let mut threads = std::collections::HashSet::new();
        while Instant::now() < end {
            runtime::preempt_point();
            threads.insert(std::thread::current().id());
        }
        (t0.elapsed(), threads.len())
    });
    wait_started(&started);
    run_others(100, 5);
    let others = t0.elapsed();
    let (busy, moved) = busy.join().unwrap();
    println!("others_ms={}", others.as_millis());
    println!("busy_ms={}", busy.as_millis());
    println!("busy_threads={moved}");
    println!("threads={}", runtime::stats().threaded_ms());
}
