//! `runtime::sync::Condvar`: producer/consumer across Gs and threads,
//! notify_all, and timed waits (which are never a deadlock).

use runtime::sync::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::{scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

struct Queue {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
}

const CAP: usize = 4;

impl Queue {
    fn push(&self, v: u64) {
        let mut q = self
            .not_full
            .wait_while(self.items.lock(), |q| q.len() >= CAP);
        q.push_back(v);
        drop(q);
        self.not_empty.notify_one();
    }

    fn pop(&self) -> u64 {
        let mut q = self
            .not_empty
            .wait_while(self.items.lock(), |q| q.is_empty());
        let v = q.pop_front().unwrap();
        drop(q);
        self.not_full.notify_one();
        v
    }
}

#[test]
fn producers_and_consumers_on_gs_and_threads_lose_nothing() {
    let q = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let per = if under_qemu() { 300 } else { 3000 };
    let producers = 6u64;
    let mut handles: Vec<Box<dyn FnOnce() -> u64>> = Vec::new();
    for p in 0..producers {
        let q = q.clone();
        let body = move || {
            for i in 0..per {
                q.push(p * 1_000_000 + i);
            }
            0
        };
        if p % 3 == 0 {
            let t = std::thread::spawn(body);
            handles.push(Box::new(move || t.join().unwrap()));
        } else {
            let h = runtime::go(body);
            handles.push(Box::new(move || h.join().unwrap()));
        }
    }
    // Three consumers: two Gs and a thread, each taking a third.
    let total = producers * per;
    for c in 0..3u64 {
        let q = q.clone();
        let body = move || (0..total / 3).map(|_| q.pop()).sum::<u64>();
        if c == 2 {
            let t = std::thread::spawn(body);
            handles.push(Box::new(move || t.join().unwrap()));
        } else {
            let h = runtime::go(body);
            handles.push(Box::new(move || h.join().unwrap()));
        }
    }
    let sum: u64 = handles.into_iter().map(|h| h()).sum();
    let expected: u64 = (0..producers)
        .map(|p| (0..per).map(|i| p * 1_000_000 + i).sum::<u64>())
        .sum();
    assert_eq!(sum, expected);
}

#[test]
fn notify_all_wakes_every_waiter() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let mut hs: Vec<Box<dyn FnOnce() -> bool>> = Vec::new();
    for i in 0..10 {
        let p = pair.clone();
        let body = move || *p.1.wait_while(p.0.lock(), |go| !*go);
        if i % 4 == 0 {
            let t = std::thread::spawn(body);
            hs.push(Box::new(move || t.join().unwrap()));
        } else {
            let h = runtime::go(body);
            hs.push(Box::new(move || h.join().unwrap()));
        }
    }
    runtime::sleep(Duration::from_millis(20));
    *pair.0.lock() = true;
    pair.1.notify_all();
    for h in hs {
        assert!(h());
    }
}

#[test]
fn wait_timeout_times_out_from_a_g_and_a_thread() {
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let p = pair.clone();
    let (timed_out, waited) = runtime::go(move || {
        let t = Instant::now();
        let (_g, r) = p.1.wait_timeout(p.0.lock(), Duration::from_millis(50));
        (r.timed_out(), t.elapsed())
    })
    .join()
    .unwrap();
    assert!(timed_out);
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    let t = Instant::now();
    let (g, r) = pair
        .1
        .wait_timeout(pair.0.lock(), Duration::from_millis(30));
    assert!(r.timed_out());
    assert!(t.elapsed() >= Duration::from_millis(30));
    // The mutex is held again after the wait.
    assert!(pair.0.try_lock().is_none());
    drop(g);
}

#[test]
fn wait_timeout_while_returns_early_when_notified() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    let h = runtime::go(move || {
        let t = Instant::now();
        let (g, r) =
            p.1.wait_timeout_while(p.0.lock(), Duration::from_secs(30), |v| !*v);
        (*g, r.timed_out(), t.elapsed())
    });
    runtime::sleep(Duration::from_millis(20));
    *pair.0.lock() = true;
    pair.1.notify_one();
    let (v, timed_out, waited) = h.join().unwrap();
    assert!(v && !timed_out);
    assert!(waited < Duration::from_secs(30));
}

#[test]
fn a_g_in_a_timed_wait_nobody_ends_is_not_a_deadlock() {
    let limit = Duration::from_secs(if under_qemu() { 120 } else { 30 });
    let o = scenario(BIN, "sync_timed_wait_not_deadlock", &[], limit);
    o.assert_success();
    assert_eq!(o.value("cond_timed_out"), Some("true"), "{o}");
    assert_eq!(o.value("sem_timed_out"), Some("true"), "{o}");
    assert!(!o.stderr.contains("deadlock"), "{o}");
}

#[test]
fn a_plain_thread_in_a_timed_wait_is_not_counted_as_blocked() {
    let limit = Duration::from_secs(if under_qemu() { 120 } else { 30 });
    let o = scenario(BIN, "crash_thread_timed_wait_not_deadlock", &[], limit);
    o.assert_success();
    assert_eq!(o.value("timed_out"), Some("true"), "{o}");
    assert!(o.parse::<u64>("waited_ms") >= 300, "{o}");
    assert!(o.stdout.contains("finished"), "{o}");
    assert!(!o.stderr.contains("deadlock"), "{o}");
}
