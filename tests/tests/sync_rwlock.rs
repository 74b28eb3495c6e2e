//! `runtime::sync::RwLock`: readers share, writers exclude, and a pending
//! writer holds new readers back.

use runtime::sync::{RwLock, WaitGroup};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Waits (yielding) until `cond` or a generous deadline; returns `cond`.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        runtime::yield_now();
        std::thread::yield_now();
    }
    true
}

#[test]
fn readers_hold_the_lock_at_the_same_time() {
    let lock = Arc::new(RwLock::new(7));
    let inside = Arc::new(AtomicUsize::new(0));
    let n = 8;
    let hs: Vec<Box<dyn FnOnce() -> bool>> = (0..n)
        .map(|i| {
            let (lock, inside) = (lock.clone(), inside.clone());
            let body = move || {
                let g = lock.read();
                inside.fetch_add(1, Ordering::SeqCst);
                // Every reader is inside before any leaves.
                let all = eventually(|| inside.load(Ordering::SeqCst) == n);
                all && *g == 7
            };
            if i % 2 == 0 {
                let h = runtime::go(body);
                Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> bool>
            } else {
                let t = std::thread::spawn(body);
                Box::new(move || t.join().unwrap())
            }
        })
        .collect();
    for h in hs {
        assert!(h(), "readers were not let in together");
    }
}

#[test]
fn a_writer_excludes_readers_and_writers() {
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let writing = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicUsize::new(0));
    let wg = Arc::new(WaitGroup::new());
    let per = if tests::under_qemu() { 200 } else { 2000 };
    for i in 0..16 {
        let (lock, writing, bad, wg) = (lock.clone(), writing.clone(), bad.clone(), wg.clone());
        wg.add(1);
        let body = move || {
            for k in 0..per {
                if (i + k) % 4 == 0 {
                    let mut g = lock.write();
                    if writing.swap(true, Ordering::SeqCst) {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                    g.0 += 1;
                    if k % 50 == 0 {
                        runtime::yield_now();
                    }
                    g.1 += 1;
                    writing.store(false, Ordering::SeqCst);
                } else {
                    let g = lock.read();
                    if writing.load(Ordering::SeqCst) || g.0 != g.1 {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            wg.done();
        };
        if i % 4 == 3 {
            std::thread::spawn(body);
        } else {
            runtime::go(body);
        }
    }
    wg.wait();
    assert_eq!(
        bad.load(Ordering::SeqCst),
        0,
        "a writer overlapped another holder"
    );
    let g = lock.read();
    assert_eq!(g.0, g.1);
    assert_eq!(g.0, 16 * per as u64 / 4);
}

#[test]
fn a_pending_writer_blocks_new_readers() {
    let lock = Arc::new(RwLock::new(0));
    let r1 = lock.read();
    let (l2, queued) = (lock.clone(), Arc::new(AtomicBool::new(false)));
    let q2 = queued.clone();
    let writer = runtime::go(move || {
        q2.store(true, Ordering::SeqCst);
        *l2.write() = 1;
    });
    assert!(eventually(|| queued.load(Ordering::SeqCst)));
    // Once the writer waits, try_read must fail even though only readers
    // hold the lock.
    assert!(
        eventually(|| lock.try_read().is_none()),
        "new readers still got in past a waiting writer"
    );
    let l3 = lock.clone();
    let late_reader = runtime::go(move || *l3.read());
    runtime::sleep(Duration::from_millis(20));
    drop(r1);
    writer.join().unwrap();
    assert_eq!(
        late_reader.join().unwrap(),
        1,
        "the late reader ran before the writer"
    );
}

#[test]
fn try_write_and_try_read() {
    let lock = RwLock::new(String::from("a"));
    {
        let _r = lock.read();
        assert!(lock.try_write().is_none());
        assert!(lock.try_read().is_some());
    }
    {
        let mut w = lock.try_write().unwrap();
        w.push('b');
        assert!(lock.try_read().is_none());
        assert!(lock.try_write().is_none());
    }
    assert_eq!(&*lock.read(), "ab");
    assert_eq!(lock.into_inner(), "ab");
}
