//! `runtime::sync::Semaphore`: bounds concurrency, serves waiters in order,
//! times out, and rejects impossible requests.

use runtime::sync::{Semaphore, WaitGroup};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::{scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

#[test]
fn at_most_capacity_holders_at_once() {
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let wg = Arc::new(WaitGroup::new());
    for i in 0..40 {
        let (sem, inside, max, wg) = (sem.clone(), inside.clone(), max.clone(), wg.clone());
        wg.add(1);
        let body = move || {
            for _ in 0..20 {
                let _p = sem.acquire(1);
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                runtime::yield_now();
                inside.fetch_sub(1, Ordering::SeqCst);
            }
            wg.done();
        };
        if i % 10 == 0 {
            std::thread::spawn(body);
        } else {
            runtime::go(body);
        }
    }
    wg.wait();
    let max = max.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} holders at once");
    assert!(
        max >= 2,
        "never more than one holder: the bound is not what limits"
    );
    assert_eq!(sem.available(), 3);
}

#[test]
fn waiters_are_served_in_arrival_order_and_a_big_request_is_not_starved() {
    let limit = Duration::from_secs(if under_qemu() { 120 } else { 30 });
    let o = scenario(BIN, "sync_semaphore_fifo", &[], limit);
    o.assert_success();
    let order = o.value("order").unwrap();
    // 0 (1 permit) goes first; 1 (all 4) before 2, 3, 4, although they
    // would fit while 0 holds its permit.
    assert!(
        order.starts_with("0,1,"),
        "the big request was overtaken: {order}\n{o}"
    );
    assert_eq!(o.value("try_acquire_jumped"), Some("false"), "{o}");
}

#[test]
fn acquire_timeout_gives_up_and_lets_the_next_waiter_in() {
    let sem = Arc::new(Semaphore::new(2));
    let held = sem.acquire(1);
    // A G asks for 2 (blocks the front), times out; a later request for 1
    // must then be served from the free permit.
    let s2 = sem.clone();
    let big = runtime::go(move || {
        let t = Instant::now();
        (
            s2.acquire_timeout(2, Duration::from_millis(60)).is_none(),
            t.elapsed(),
        )
    });
    runtime::sleep(Duration::from_millis(15));
    let s3 = sem.clone();
    let small = std::thread::spawn(move || {
        s3.acquire_timeout(1, Duration::from_secs(30))
            .map(|p| p.forget())
    });
    let (timed_out, waited) = big.join().unwrap();
    assert!(timed_out);
    assert!(waited >= Duration::from_millis(60));
    assert_eq!(small.join().unwrap(), Some(1));
    sem.release(1);
    drop(held);
    assert_eq!(sem.available(), 2);
    // From a plain thread.
    let _all = sem.acquire(2);
    let t = Instant::now();
    assert!(sem.acquire_timeout(1, Duration::from_millis(30)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn impossible_requests_and_over_release_panic_in_the_caller() {
    let sem = Arc::new(Semaphore::new(3));
    let s2 = sem.clone();
    let err = runtime::go(move || drop(s2.acquire(4))).join().unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("4 permits asked of a semaphore of 3"), "{msg}");
    let s3 = sem.clone();
    let err = runtime::go(move || s3.release(1)).join().unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("released more permits than were acquired"),
        "{msg}"
    );
    assert_eq!(sem.available(), 3);
}

#[test]
fn many_timed_waits_that_end_early_lose_no_permit() {
    let limit = Duration::from_secs(if under_qemu() { 300 } else { 60 });
    let o = scenario(
        BIN,
        "sync_timed_waits_end_early",
        &[("GORT_MAXPROCS", "2")],
        limit,
    );
    o.assert_success();
    assert_eq!(o.parse::<u64>("got"), o.parse::<u64>("expected"), "{o}");
}
