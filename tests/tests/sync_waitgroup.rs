//! `runtime::sync::WaitGroup`: Go's semantics from Gs and plain threads.

use runtime::sync::WaitGroup;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn waits_for_gs_and_threads_and_wakes_waiters_of_both_kinds() {
    let wg = Arc::new(WaitGroup::new());
    let done = Arc::new(AtomicUsize::new(0));
    wg.add(20);
    for i in 0..20 {
        let (wg, done) = (wg.clone(), done.clone());
        let body = move || {
            runtime::sleep(Duration::from_millis((i % 5) as u64));
            done.fetch_add(1, Ordering::SeqCst);
            wg.done();
        };
        if i % 5 == 0 {
            std::thread::spawn(body);
        } else {
            runtime::go(body);
        }
    }
    // Waiters: two Gs, one extra thread, and this thread.
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (wg, done) = (wg.clone(), done.clone());
            runtime::go(move || {
                wg.wait();
                done.load(Ordering::SeqCst)
            })
        })
        .collect();
    let (w2, d2) = (wg.clone(), done.clone());
    let t = std::thread::spawn(move || {
        w2.wait();
        d2.load(Ordering::SeqCst)
    });
    wg.wait();
    assert_eq!(done.load(Ordering::SeqCst), 20);
    for w in waiters {
        assert_eq!(w.join().unwrap(), 20);
    }
    assert_eq!(t.join().unwrap(), 20);
    assert_eq!(wg.count(), 0);
}

#[test]
fn a_negative_counter_panics_in_the_caller_with_gos_message() {
    let wg = Arc::new(WaitGroup::new());
    let w2 = wg.clone();
    let err = runtime::go(move || w2.done()).join().unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap();
    assert_eq!(msg, "sync: negative WaitGroup counter");
    // The group is unchanged and still usable.
    assert_eq!(wg.count(), 0);
    wg.add(1);
    wg.done();
    wg.wait();
    // On a plain thread too.
    let w3 = wg.clone();
    assert!(std::thread::spawn(move || w3.add(-1)).join().is_err());
    assert_eq!(wg.count(), 0);
}

#[test]
fn the_group_is_reusable_at_once() {
    let wg = Arc::new(WaitGroup::new());
    for round in 0..50 {
        wg.add(2);
        let (a, b) = (wg.clone(), wg.clone());
        runtime::go(move || a.done());
        std::thread::spawn(move || b.done());
        wg.wait();
        assert_eq!(wg.count(), 0, "round {round}");
    }
}

#[test]
fn wait_timeout_reports_both_outcomes() {
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    let (ok, waited) = runtime::go(move || {
        let t = Instant::now();
        (w2.wait_timeout(Duration::from_millis(40)), t.elapsed())
    })
    .join()
    .unwrap();
    assert!(!ok);
    assert!(waited >= Duration::from_millis(40));
    assert!(!wg.wait_timeout(Duration::from_millis(10)));
    let w3 = wg.clone();
    let h = runtime::go(move || w3.wait_timeout(Duration::from_secs(30)));
    runtime::sleep(Duration::from_millis(10));
    wg.done();
    assert!(h.join().unwrap());
    assert!(wg.wait_timeout(Duration::ZERO));
}
