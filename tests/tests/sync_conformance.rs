//! Conformance with the documented semantics of std's, parking_lot's and
//! Go's locks, written for gort: permit accounting under misuse, the read
//! guard's variance, `downgrade`, the parking `Barrier`, `OnceLock` and
//! `LazyLock`, `Condvar::wait_until` and the counts `notify_*` return,
//! `Once::call_once_force`; each with exact counts under contention from
//! Gs and threads together.

use runtime::sync::{
    Barrier, Condvar, LazyLock, Mutex, Once, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard,
    Semaphore,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::under_qemu;

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `f` on `n` Gs and `n` plain threads at once; waits for all.
fn on_gs_and_threads(n: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let gs: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            runtime::go(move || f(i))
        })
        .collect();
    let ts: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(n + i))
        })
        .collect();
    gs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn a_permit_released_by_hand_is_not_returned_again_by_its_guard() {
    let sem = Arc::new(Semaphore::new(5));
    let s2 = sem.clone();
    let err = runtime::go(move || {
        let p = s2.acquire(2);
        s2.release(2);
        drop(p);
    })
    .join()
    .unwrap_err();
    assert!(
        panic_message(&*err).contains("released more permits than were acquired"),
        "{}",
        panic_message(&*err)
    );
    // The guard, dropped while unwinding, returned its two; nothing else.
    assert_eq!(sem.available(), 5);
    assert_eq!(sem.capacity(), 5);
    // Forgotten permits can be released, exactly once.
    let n = sem.acquire(3).forget();
    assert_eq!(sem.available(), 2);
    sem.release(2);
    sem.release(1);
    assert_eq!(sem.available(), 5);
    let s3 = sem.clone();
    assert!(std::thread::spawn(move || s3.release(1)).join().is_err());
    assert_eq!((n, sem.available()), (3, 5));
}

#[test]
fn permits_are_never_over_granted_under_contention() {
    let iters = if under_qemu() { 100 } else { 1000 };
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (s, i2, m2) = (sem.clone(), inside.clone(), max.clone());
    on_gs_and_threads(4, move |k| {
        for j in 0..iters {
            let n = 1 + ((k + j) % 3) as u64;
            let p = if j % 5 == 0 {
                match s.acquire_timeout(n, Duration::from_micros(50)) {
                    Some(p) => p,
                    None => continue,
                }
            } else {
                s.acquire(n)
            };
            let now = i2.fetch_add(n as usize, Ordering::SeqCst) + n as usize;
            m2.fetch_max(now, Ordering::SeqCst);
            i2.fetch_sub(n as usize, Ordering::SeqCst);
            if j % 7 == 0 {
                let k = p.forget();
                s.release(k);
            }
        }
    });
    assert!(max.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.available(), 3);
}

/// std's covariance test: a read guard of a longer-lived `&str` is one of
/// a shorter-lived one. Compiles only if the guard is covariant in `T`.
#[allow(dead_code)]
fn read_guard_is_covariant<'a, 'b: 'a>(
    g: RwLockReadGuard<'b, &'b str>,
) -> RwLockReadGuard<'a, &'a str> {
    g
}

#[test]
fn read_guards_are_covariant_like_std() {
    let lock = RwLock::new("static");
    let g: RwLockReadGuard<'_, &'static str> = lock.read();
    let short = read_guard_is_covariant(g);
    assert_eq!(*short, "static");
}

#[test]
fn downgrade_lets_waiting_readers_in_and_keeps_writers_out() {
    let lock = Arc::new(RwLock::new(0u32));
    let mut w = lock.write();
    *w = 1;
    // Readers queue behind the writer.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let l = lock.clone();
            runtime::go(move || *l.read())
        })
        .collect();
    runtime::sleep(Duration::from_millis(20));
    let r = RwLockWriteGuard::downgrade(w);
    // They get in while we still read.
    for h in readers {
        assert_eq!(h.join().unwrap(), 1);
    }
    // A writer waits for our read hold.
    let l = lock.clone();
    let writer = runtime::go(move || *l.write() = 2);
    runtime::sleep(Duration::from_millis(20));
    assert_eq!(*r, 1, "no writer came in between");
    assert!(lock.try_write().is_none());
    drop(r);
    writer.join().unwrap();
    assert_eq!(*lock.read(), 2);
}

#[test]
fn rwlock_counts_are_exact_under_contention() {
    let iters = if under_qemu() { 200 } else { 2000 };
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let l = lock.clone();
    on_gs_and_threads(3, move |k| {
        for j in 0..iters {
            match (k + j) % 4 {
                0 => {
                    let mut g = l.write();
                    g.0 += 1;
                    g.1 += 1;
                }
                1 => {
                    let mut g = l.write();
                    g.0 += 1;
                    let mine = *g;
                    let r = RwLockWriteGuard::downgrade(g);
                    runtime::yield_now();
                    assert_eq!(*r, mine, "a writer came in after the downgrade");
                    drop(r);
                    l.write().1 += 1;
                }
                _ => {
                    let g = l.read();
                    assert!(g.0 >= g.1 && g.0 - g.1 <= 1 + 6, "{:?}", *g);
                }
            }
        }
    });
    let g = lock.read();
    assert_eq!(g.0, g.1);
    assert_eq!(g.0, (6 * iters / 2) as u64);
}

#[test]
fn barrier_releases_each_round_together_with_one_leader() {
    let rounds = if under_qemu() { 20 } else { 200 };
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let (b, a, l) = (barrier.clone(), arrived.clone(), leaders.clone());
    on_gs_and_threads(n / 2, move |_| {
        for round in 0..rounds {
            a.fetch_add(1, Ordering::SeqCst);
            if b.wait().is_leader() {
                l.fetch_add(1, Ordering::SeqCst);
            }
            // Nobody passes before all of this round arrived.
            assert!(a.load(Ordering::SeqCst) >= (round + 1) * n);
        }
    });
    assert_eq!(leaders.load(Ordering::SeqCst), rounds);
    // n of 0 and 1 never wait.
    assert!(Barrier::new(0).wait().is_leader());
    assert!(Barrier::new(1).wait().is_leader());
}

#[test]
fn barrier_parks_gs_instead_of_blocking_their_ms() {
    // One P: if `wait` blocked the M, the last G could never arrive (the
    // child would hang until the time limit kills it).
    let exe = std::env::current_exe().unwrap();
    let o = tests::run(
        exe.to_str().unwrap(),
        &["--exact", "barrier_child", "--nocapture"],
        &[("GORT_MAXPROCS", "1"), ("SYNC_CONFORMANCE_CHILD", "1")],
        tests::crash_limit(),
    );
    assert_eq!(o.code, Some(0), "{o}");
    assert!(o.stdout.contains("1 passed"), "{o}");
}

#[test]
fn barrier_child() {
    if std::env::var_os("SYNC_CONFORMANCE_CHILD").is_none() {
        return;
    }
    let b = Arc::new(Barrier::new(3));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            runtime::go(move || b.wait().is_leader())
        })
        .collect();
    let leaders = hs.into_iter().map(|h| h.join().unwrap());
    assert_eq!(leaders.filter(|&l| l).count(), 1);
}

#[test]
fn once_lock_runs_one_initialiser_and_parks_the_rest() {
    let cell = Arc::new(OnceLock::<usize>::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (c, r) = (cell.clone(), runs.clone());
    on_gs_and_threads(8, move |i| {
        let v = *c.get_or_init(|| {
            r.fetch_add(1, Ordering::SeqCst);
            runtime::sleep(Duration::from_millis(20));
            1000 + i
        });
        assert_eq!(Some(&v), c.get());
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cell.set(5), Err(5));
    // A panicking initialiser leaves it empty; the next one runs.
    let cell = OnceLock::<u8>::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.get_or_init(|| panic!("init"));
    }));
    assert!(r.is_err());
    assert_eq!(cell.get(), None);
    assert_eq!(*cell.get_or_init(|| 7), 7);
    assert_eq!(cell.set(8), Err(8));
    assert_eq!(cell.into_inner(), Some(7));
}

static LAZY_RUNS: AtomicUsize = AtomicUsize::new(0);
static LAZY: LazyLock<Vec<u32>> = LazyLock::new(|| {
    LAZY_RUNS.fetch_add(1, Ordering::SeqCst);
    runtime::sleep(Duration::from_millis(10));
    vec![1, 2, 3]
});

#[test]
fn lazy_lock_initialises_once() {
    on_gs_and_threads(6, |_| assert_eq!(LAZY.iter().sum::<u32>(), 6));
    assert_eq!(LAZY_RUNS.load(Ordering::SeqCst), 1);
    let bad: LazyLock<u8> = LazyLock::new(|| panic!("first use"));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *bad));
    assert_eq!(panic_message(&*first.unwrap_err()), "first use");
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *bad));
    assert!(panic_message(&*second.unwrap_err()).contains("panicked on an earlier use"));
    let unused = LazyLock::new(|| 5u8);
    assert!(LazyLock::into_inner(unused).is_err());
}

#[test]
fn condvar_notify_counts_and_wait_until() {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    assert!(!pair.1.notify_one(), "nobody waits");
    assert_eq!(pair.1.notify_all(), 0);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let p = pair.clone();
            runtime::go(move || {
                let g = p.1.wait_while(p.0.lock(), |n| *n == 0);
                *g
            })
        })
        .collect();
    // Wait until all three are queued: notify_all reports them.
    let mut woken = 0;
    let t = Instant::now();
    while woken < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "waiters never queued"
        );
        runtime::sleep(Duration::from_millis(5));
        *pair.0.lock() = 0;
        woken = pair.1.notify_all();
        if woken < 3 {
            // Some were woken and re-wait; count afresh.
            woken = 0;
            continue;
        }
    }
    *pair.0.lock() = 1;
    while pair.1.notify_all() > 0 {}
    for h in waiters {
        assert_eq!(h.join().unwrap(), 1);
    }
    // wait_until times out at the deadline and reports it.
    let (m, cv) = &*pair;
    let deadline = Instant::now() + Duration::from_millis(30);
    let (g, r) = cv.wait_until(m.lock(), deadline);
    assert!(r.timed_out());
    assert!(Instant::now() >= deadline);
    drop(g);
    // ... and a notify before the deadline ends it early.
    let p = pair.clone();
    let h = runtime::go(move || {
        let mut g = p.0.lock();
        let deadline = Instant::now() + Duration::from_secs(60);
        while *g != 2 {
            let (g2, r) = p.1.wait_until(g, deadline);
            assert!(!r.timed_out());
            g = g2;
        }
    });
    runtime::sleep(Duration::from_millis(10));
    *pair.0.lock() = 2;
    // A G that took the lock only after the store sees 2 and never waits:
    // then nobody is left to notify.
    while !h.is_finished() && !pair.1.notify_one() {
        runtime::sleep(Duration::from_millis(1));
    }
    h.join().unwrap();
}

#[test]
fn condvar_loses_no_wakeup_under_contention() {
    // A producer/consumer counter: every increment is seen, none lost.
    let n = if under_qemu() { 300 } else { 3000 };
    let pair = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    let p = pair.clone();
    let consumer = runtime::go(move || {
        let mut g = p.0.lock();
        while g.1 < n {
            g = p.1.wait_while(g, |s| s.0 == 0);
            g.0 -= 1;
            g.1 += 1;
        }
        g.1
    });
    let p = pair.clone();
    let producer = std::thread::spawn(move || {
        for _ in 0..n {
            p.0.lock().0 += 1;
            p.1.notify_one();
        }
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), n);
}

#[test]
fn once_call_once_force_retries_after_a_panic_only() {
    let once = Once::new();
    let r = std::panic::catch_unwind(|| once.call_once(|| panic!("first")));
    assert!(r.is_err());
    // Go's rule for call_once: done, even after a panic.
    assert!(once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(!ran);
    // std's rule for call_once_force: runs again, told it was poisoned.
    let mut poisoned = None;
    once.call_once_force(|s| poisoned = Some(s.is_poisoned()));
    assert_eq!(poisoned, Some(true));
    let mut again = false;
    once.call_once_force(|_| again = true);
    assert!(!again, "a function returned: nothing runs again");
    let fresh = Once::new();
    let mut state = None;
    fresh.call_once_force(|s| state = Some(s.is_poisoned()));
    assert_eq!(state, Some(false));
    assert!(fresh.is_completed());
}

#[test]
fn once_runs_once_under_contention() {
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (o, r) = (once.clone(), runs.clone());
    on_gs_and_threads(8, move |i| {
        if i % 2 == 0 {
            o.call_once(|| {
                r.fetch_add(1, Ordering::SeqCst);
            });
        } else {
            o.call_once_force(|_| {
                r.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(o.is_completed());
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn mapped_guards_hold_the_lock_and_release_it_on_panic() {
    use runtime::sync::{MappedMutexGuard, MappedRwLockWriteGuard, MutexGuard};
    let m = Arc::new(Mutex::new((0u32, vec![1u32, 2, 3])));
    {
        let v = MutexGuard::map(m.lock(), |p| &mut p.1);
        let mut last = MappedMutexGuard::map(v, |v| &mut v[2]);
        *last += 10;
        // Held: a G trying to lock waits until the mapped guard drops.
        let m2 = m.clone();
        let h = runtime::go(move || m2.lock().1[2]);
        runtime::sleep(Duration::from_millis(20));
        assert!(!h.is_finished());
        drop(last);
        assert_eq!(h.join().unwrap(), 13);
    }
    // try_map gives the guard back when `f` finds nothing.
    let g = MutexGuard::try_map(m.lock(), |p| p.1.get_mut(9)).unwrap_err();
    assert_eq!(g.1.len(), 3);
    drop(g);
    // A panic in `f` unlocks.
    let m3 = m.clone();
    // Not poisoned, so not `RefUnwindSafe` (as parking_lot's).
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _ = MutexGuard::map(m3.lock(), |_| -> &mut u32 { panic!("in map") });
    }));
    assert!(r.is_err());
    assert!(m.try_lock().is_some(), "unlocked after the panic in map");

    let lock = Arc::new(RwLock::new((String::from("x"), 5u8)));
    {
        let r1 = RwLockReadGuard::map(lock.read(), |p| &p.0);
        let r2 = RwLockReadGuard::map(lock.read(), |p| &p.1);
        assert_eq!((r1.as_str(), *r2), ("x", 5));
        assert!(lock.try_write().is_none(), "readers still hold it");
    }
    {
        let w = RwLockWriteGuard::map(lock.write(), |p| &mut p.0);
        let mut w = MappedRwLockWriteGuard::map(w, |s| s);
        w.push('y');
        assert!(lock.try_read().is_none(), "the writer still holds it");
    }
    assert_eq!(lock.read().0, "xy");
    let l2 = lock.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _ = RwLockWriteGuard::map(l2.write(), |_| -> &mut u8 { panic!("in map") });
    }));
    assert!(r.is_err());
    assert!(
        lock.try_write().is_some(),
        "unlocked after the panic in map"
    );
}
