//! Scenarios for living with the ecosystem: futures, thread-bound values,
//! OS signals, child processes, live dumps.

use std::time::Duration;

/// This module's scenarios, by name (looked up after `main`'s table).
pub const SCENARIOS: &[(&str, fn())] = &[
    ("eco_block_on_one_p", block_on_one_p),
    ("eco_thread_bound_park", thread_bound_park),
    ("eco_thread_bound_locked", thread_bound_locked),
];

/// Symptom: with one P, a G waiting in `block_on` keeps the M, so the G
/// that would send (on the same P) never runs: a hang.
pub fn block_on_one_p() {
    let (tx, rx) = async_channel::bounded::<u64>(1);
    let consumer = runtime::go(move || {
        let mut sum = 0;
        while let Ok(v) = runtime::block_on(rx.recv()) {
            sum += v;
        }
        sum
    });
    let producer = runtime::go(move || {
        for i in 0..100 {
            runtime::block_on(tx.send(i)).unwrap();
        }
    });
    producer.join().unwrap();
    println!("sum={}", consumer.join().unwrap());
}

/// Symptom: a `ThreadBound` marker held across a park goes unnoticed in a
/// debug build (the value may be used on another thread).
pub fn thread_bound_park() {
    runtime::go(|| {
        let _borrow = runtime::ThreadBound::new();
        runtime::sleep(Duration::from_millis(1));
    })
    .join()
    .unwrap();
    println!("finished=1");
}

/// A G locked to its thread may keep thread-bound values across parks.
pub fn thread_bound_locked() {
    runtime::go(|| {
        runtime::lock_os_thread();
        let _borrow = runtime::ThreadBound::new();
        let t = std::thread::current().id();
        runtime::sleep(Duration::from_millis(1));
        assert_eq!(t, std::thread::current().id());
        runtime::unlock_os_thread();
    })
    .join()
    .unwrap();
    println!("finished=1");
}
