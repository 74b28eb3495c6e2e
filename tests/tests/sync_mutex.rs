//! `runtime::sync::Mutex`: mutual exclusion across Gs and plain threads,
//! starvation mode, timed locking, and what a deadlock on it looks like.

use runtime::sync::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::{Outcome, scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn run(name: &str, env: &[(&str, &str)]) -> Outcome {
    let limit = if under_qemu() {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(60)
    };
    scenario(BIN, name, env, limit)
}

#[test]
fn no_update_is_lost_with_gs_on_two_procs_and_plain_threads() {
    let o = run("sync_mutex_stress", &[("GORT_MAXPROCS", "2")]);
    o.assert_success();
    assert_eq!(o.parse::<u64>("total"), o.parse::<u64>("expected"), "{o}");
}

#[test]
fn a_g_waiter_is_not_starved_by_a_g_that_relocks_in_a_loop() {
    for procs in ["1", "2"] {
        let o = run("sync_mutex_starvation", &[("GORT_MAXPROCS", procs)]);
        o.assert_success();
        let worst: u64 = o.parse("worst_wait_us");
        // Starvation mode hands the lock over after ~1 ms of waiting; the
        // bound is generous for a loaded 2-core machine (and qemu).
        let bound = if under_qemu() { 20_000_000 } else { 2_000_000 };
        assert!(worst < bound, "procs={procs}: waited {worst} µs\n{o}");
        assert!(o.parse::<u64>("hog_rounds") > 0, "{o}");
    }
}

#[test]
fn a_waiter_is_not_starved_by_a_plain_thread_that_relocks_in_a_loop() {
    let o = run(
        "sync_mutex_starvation",
        &[("GORT_MAXPROCS", "2"), ("HOG", "thread")],
    );
    o.assert_success();
    let worst: u64 = o.parse("worst_wait_us");
    let bound = if under_qemu() { 20_000_000 } else { 2_000_000 };
    assert!(worst < bound, "waited {worst} µs\n{o}");
}

#[test]
fn a_deadlock_on_a_mutex_is_reported_with_the_wait_reason() {
    if under_qemu() {
        // As crash_dump.rs: qemu-user's own threads appear in
        // /proc/self/task, so deadlock detection (rightly) never fires.
        eprintln!("skipped under qemu-user: its own threads appear in /proc/self/task");
        return;
    }
    let o = run("crash_mutex_deadlock", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        o.stderr
            .contains("fatal error: all goroutines are asleep - deadlock!"),
        "{o}"
    );
    assert!(o.stderr.contains("[sync.Mutex.Lock"), "{o}");
    assert!(o.stderr.contains("[sync.WaitGroup.Wait"), "{o}");
    assert!(!o.stdout.contains("unreachable"), "{o}");
}

#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    let m = Arc::new(Mutex::new(5));
    let g = m.lock();
    let m2 = m.clone();
    let other = runtime::go(move || m2.try_lock().is_none()).join().unwrap();
    assert!(other, "try_lock succeeded on a held mutex");
    drop(g);
    let m2 = m.clone();
    assert_eq!(
        runtime::go(move || m2.try_lock().map(|g| *g))
            .join()
            .unwrap(),
        Some(5)
    );
}

#[test]
fn try_lock_for_times_out_from_a_g_and_from_a_thread() {
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    let m2 = m.clone();
    let (got, waited) = runtime::go(move || {
        let t = Instant::now();
        let got = m2.try_lock_for(Duration::from_millis(50)).is_some();
        (got, t.elapsed())
    })
    .join()
    .unwrap();
    assert!(!got);
    assert!(
        waited >= Duration::from_millis(50),
        "returned early: {waited:?}"
    );
    let t = Instant::now();
    assert!(m.try_lock_for(Duration::from_millis(30)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(30));
    drop(g);
    let t = Instant::now();
    // Free now: from a thread, and a G, it succeeds well before the timeout.
    assert!(m.try_lock_for(Duration::from_secs(10)).is_some());
    assert!(t.elapsed() < Duration::from_secs(10));
    let m2 = m.clone();
    assert!(
        runtime::go(move || m2.try_lock_for(Duration::from_secs(10)).is_some())
            .join()
            .unwrap()
    );
}

#[test]
fn try_lock_for_gets_the_lock_when_released_before_the_deadline() {
    let m = Arc::new(Mutex::new(0u32));
    let g = m.lock();
    let mut hs = Vec::new();
    for _ in 0..4 {
        let m2 = m.clone();
        hs.push(runtime::go(move || {
            let got = m2.try_lock_for(Duration::from_secs(30));
            got.map(|mut g| {
                *g += 1;
            })
            .is_some()
        }));
    }
    let m3 = m.clone();
    let t = std::thread::spawn(move || {
        m3.try_lock_for(Duration::from_secs(30))
            .map(|mut g| *g += 1)
            .is_some()
    });
    runtime::sleep(Duration::from_millis(30));
    drop(g);
    for h in hs {
        assert!(h.join().unwrap(), "a timed waiter missed a free lock");
    }
    assert!(t.join().unwrap());
    assert_eq!(*m.lock(), 5);
}

#[test]
fn timed_out_waiters_leave_the_mutex_usable() {
    // Many waiters time out while the lock is held and handed around:
    // afterwards lock/unlock still works and nothing is left inconsistent.
    let m = Arc::new(Mutex::new(0u64));
    let rounds = if under_qemu() { 20 } else { 200 };
    let hs: Vec<_> = (0..20)
        .map(|i| {
            let m = m.clone();
            runtime::go(move || {
                let mut got = 0u64;
                for k in 0..rounds {
                    if (i + k) % 3 == 0 {
                        let mut g = m.lock();
                        *g += 1;
                        got += 1;
                        runtime::sleep(Duration::from_micros(200));
                    } else if let Some(mut g) = m.try_lock_for(Duration::from_micros(100)) {
                        *g += 1;
                        got += 1;
                    }
                }
                got
            })
        })
        .collect();
    let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(*m.lock(), total);
    assert!(m.try_lock().is_some());
}

#[test]
fn a_panic_while_holding_the_lock_unlocks_it() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = runtime::go(move || {
        let mut g = m2.lock();
        *g = 2;
        panic!("inside");
    })
    .join();
    assert!(r.is_err());
    assert_eq!(*m.lock(), 2, "no poisoning: the data stays as left");
}

#[test]
fn get_mut_and_into_inner() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().push(2);
    assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2], .. }");
    assert_eq!(m.into_inner(), vec![1, 2]);
}
