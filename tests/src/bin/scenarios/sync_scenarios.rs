//! `runtime::sync` scenarios that need their own process: a fixed number
//! of Ps (`GORT_MAXPROCS`), or an ending the test asserts on (a deadlock
//! report).

use runtime::sync::{Condvar, Mutex, Semaphore, WaitGroup};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn scale(n: usize) -> usize {
    if tests::under_qemu() {
        (n / 10).max(1)
    } else {
        n
    }
}

/// Symptom: an increment under the lock is lost (two owners at once), or
/// a waiter is never woken, when Gs on several Ps and plain threads
/// contend on one mutex — some holding it across a park.
pub fn mutex_stress() {
    let gs = 200;
    let threads = 4;
    let per = scale(2000);
    let m = Arc::new(Mutex::new(0u64));
    let wg = Arc::new(WaitGroup::new());
    for i in 0..gs {
        wg.add(1);
        let (m, wg) = (m.clone(), wg.clone());
        runtime::go(move || {
            for k in 0..per {
                let mut g = m.lock();
                let v = *g;
                // Park while holding the lock now and then: the owner is
                // off its M, the others must wait, not barge in.
                if (i + k) % 97 == 0 {
                    runtime::yield_now();
                }
                *g = v + 1;
            }
            wg.done();
        });
    }
    let ths: Vec<_> = (0..threads)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for k in 0..per {
                    if k % 2 == 0 {
                        *m.lock() += 1;
                    } else {
                        let mut g = loop {
                            if let Some(g) = m.try_lock_for(Duration::from_millis(1)) {
                                break g;
                            }
                        };
                        *g += 1;
                    }
                }
            })
        })
        .collect();
    wg.wait();
    for t in ths {
        t.join().unwrap();
    }
    println!("total={}", *m.lock());
    println!("expected={}", (gs + threads) * per);
}

/// Symptom: a waiter starves while another party unlocks and relocks the
/// mutex in a tight loop (it is always running when the lock is free, so
/// without starvation mode it always wins). The hog yields while holding
/// the lock — scheduling is cooperative, so with one P that is what lets
/// the waiters run at all — and never outside it.
pub fn mutex_starvation() {
    let m = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let hog_as_thread = std::env::var("HOG").as_deref() == Ok("thread");
    let hog_loop = {
        let (m, stop) = (m.clone(), stop.clone());
        move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _g = m.lock();
                // ~50 µs of work inside.
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
                runtime::yield_now();
                n += 1;
            }
            n
        }
    };
    let hog_g;
    let hog_t;
    if hog_as_thread {
        hog_t = Some(std::thread::spawn(hog_loop));
        hog_g = None;
    } else {
        hog_g = Some(runtime::go(hog_loop));
        hog_t = None;
    }
    // Let the hog get going.
    std::thread::sleep(Duration::from_millis(20));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let m2 = m.clone();
        let waited = runtime::go(move || {
            let t = Instant::now();
            drop(m2.lock());
            t.elapsed()
        })
        .join()
        .unwrap();
        worst = worst.max(waited);
        // And a plain-thread waiter.
        let t = Instant::now();
        drop(m.lock());
        worst = worst.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = match (hog_g, hog_t) {
        (Some(g), _) => g.join().unwrap(),
        (_, Some(t)) => t.join().unwrap(),
        _ => 0,
    };
    println!("worst_wait_us={}", worst.as_micros());
    println!("hog_rounds={rounds}");
}

#[inline(never)]
fn holds_then_waits(m: Arc<Mutex<()>>, wg: Arc<WaitGroup>, locked: Arc<WaitGroup>) {
    let _g = m.lock();
    locked.done();
    wg.wait(); // nobody calls done
}

#[inline(never)]
fn locks_forever(m: Arc<Mutex<()>>) {
    // Park for good only once main is blocked in `join`: deadlock detection
    // runs when the last M goes idle, and counts the threads blocked then.
    runtime::sleep(Duration::from_millis(50));
    drop(m.lock());
}

/// Symptom: Gs stuck on a mutex hang the process silently, or the dump
/// does not say what they wait for.
pub fn mutex_deadlock() {
    let m = Arc::new(Mutex::new(()));
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let locked = Arc::new(WaitGroup::new());
    locked.add(1);
    let (m1, wg1, l1) = (m.clone(), wg.clone(), locked.clone());
    let _holder = runtime::go(move || holds_then_waits(m1, wg1, l1));
    locked.wait();
    let m2 = m.clone();
    let h = runtime::go(move || locks_forever(m2));
    h.join().unwrap();
    println!("unreachable");
}

/// Symptom: a G in a timed wait that nobody will end is reported as a
/// deadlock instead of timing out.
pub fn timed_wait_not_deadlock() {
    let pair = Arc::new((Mutex::new(()), Condvar::new()));
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire(1).forget();
    let (p, s) = (pair.clone(), sem.clone());
    let h = runtime::go(move || {
        let (m, cv) = &*p;
        let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(200));
        let cond_timed_out = r.timed_out();
        let sem_timed_out = s.acquire_timeout(1, Duration::from_millis(200)).is_none();
        (cond_timed_out, sem_timed_out)
    });
    let (c, s) = h.join().unwrap();
    sem.release(held);
    println!("cond_timed_out={c}");
    println!("sem_timed_out={s}");
}

/// Symptom: a woken waiter's stale timer keeps firing, or many short timed
/// waits that end early pile up in the timer heap.
pub fn timed_waits_end_early() {
    let sem = Arc::new(Semaphore::new(1));
    sem.acquire(1).forget();
    let n = scale(20_000) as u64;
    let done = Arc::new(AtomicU64::new(0));
    // Permits the waiter took and gave up (only those may be released).
    let forgotten = Arc::new(AtomicU64::new(0));
    let (s2, d2, f2) = (sem.clone(), done.clone(), forgotten.clone());
    let waiter = runtime::go(move || {
        let mut got = 0u64;
        for _ in 0..n {
            if let Some(p) = s2.acquire_timeout(1, Duration::from_secs(3600)) {
                p.forget();
                f2.fetch_add(1, Ordering::Release);
                got += 1;
            }
        }
        d2.store(got, Ordering::Relaxed);
    });
    let releaser = runtime::go(move || {
        for i in 0..n {
            // One permit at a time: wait until the waiter took the last
            // and gave it up.
            while sem.available() != 0 || forgotten.load(Ordering::Acquire) < i {
                runtime::yield_now();
            }
            sem.release(1);
            runtime::yield_now();
        }
    });
    releaser.join().unwrap();
    waiter.join().unwrap();
    println!("got={}", done.load(Ordering::Relaxed));
    println!("expected={n}");
}

/// Symptom: a large semaphore request waits forever while a stream of
/// smaller ones, arriving later, keep taking the permits it needs.
pub fn semaphore_fifo() {
    let sem = Arc::new(Semaphore::new(4));
    let held = sem.acquire(4);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut hs = Vec::new();
    // Arrive in order: 1, a big 4, then small ones that would fit sooner.
    for (i, n) in [1u64, 4, 1, 1, 2].into_iter().enumerate() {
        let (sem, order) = (sem.clone(), order.clone());
        hs.push(runtime::go(move || {
            let _p = sem.acquire(n);
            order.lock().push(i.to_string());
            runtime::sleep(Duration::from_millis(2));
        }));
        // Let it queue before the next arrives (only our Gs exist here).
        while runtime::stats().waiting_gs < i + 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // A free request of 1 may not jump the queue either.
    let jumped = {
        drop(held);
        // Permits are handed out at once to 0 (1) — then 1 (4) waits for
        // 0's permit; 3 are free but the queue is not empty.
        sem.try_acquire(1).is_some()
    };
    for h in hs {
        h.join().unwrap();
    }
    println!("order={}", order.lock().join(","));
    println!("try_acquire_jumped={jumped}");
}

/// Symptom: a plain thread in a timed wait is counted as "blocked on a G",
/// so a G parked until that thread acts is reported as a deadlock although
/// the thread will run again by itself when its wait times out.
pub fn thread_timed_wait_not_deadlock() {
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    // The G parks for good only once this thread is in its timed wait
    // (deadlock detection runs when the last M goes idle).
    let g = runtime::go(move || {
        runtime::sleep(Duration::from_millis(50));
        w2.wait()
    });
    // Only this thread can end the G's wait, and it is in a timed wait
    // (on a plain thread: no scheduler timer) that nobody ends.
    let sem = Semaphore::new(1);
    let _all = sem.acquire(1);
    let t = Instant::now();
    let timed_out = sem.acquire_timeout(1, Duration::from_millis(300)).is_none();
    println!("timed_out={timed_out}");
    println!("waited_ms={}", t.elapsed().as_millis());
    wg.done();
    g.join().unwrap();
    println!("finished");
}
