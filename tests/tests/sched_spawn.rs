//! Spawning and joining in one shared runtime (default configuration).

use runtime::sync::WaitGroup;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

#[test]
fn spawn_and_join_100_000() {
    let hs: Vec<_> = (0..100_000u64).map(|i| runtime::go(move || i)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 100_000 * 99_999 / 2);
}

#[test]
fn nested_spawns() {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let l = runtime::go(move || tree(depth - 1));
        let r = runtime::go(move || tree(depth - 1));
        l.join().unwrap() + r.join().unwrap()
    }
    assert_eq!(runtime::go(|| tree(12)).join().unwrap(), 4096);
}

#[test]
fn join_from_a_g_parks_it() {
    let inner_done = Arc::new(AtomicUsize::new(0));
    let d = inner_done.clone();
    let outer = runtime::go(move || {
        let inner = runtime::go(move || {
            runtime::sleep(Duration::from_millis(20));
            d.fetch_add(1, Ordering::SeqCst);
            "inner"
        });
        inner.join().unwrap()
    });
    assert_eq!(outer.join().unwrap(), "inner");
    assert_eq!(inner_done.load(Ordering::SeqCst), 1);
}

#[test]
fn join_from_a_plain_thread() {
    let h = runtime::go(|| {
        runtime::sleep(Duration::from_millis(10));
        String::from("done")
    });
    let t = std::thread::spawn(move || h.join().unwrap());
    assert_eq!(t.join().unwrap(), "done");
}

#[test]
fn panicking_g_gives_err() {
    let h = runtime::go(|| -> u8 { panic!("expected panic in a G") });
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"expected panic in a G"));
    // The runtime keeps working.
    assert_eq!(runtime::go(|| 3).join().unwrap(), 3);
}

#[test]
fn sleeping_gs_overlap() {
    let start = Instant::now();
    let hs: Vec<_> = (0..10_000)
        .map(|_| runtime::go(|| runtime::sleep(Duration::from_millis(50))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let took = start.elapsed();
    // One after another would take 500 s.
    assert!(
        took < Duration::from_secs(10),
        "10,000 sleeps of 50 ms took {took:?}"
    );
    assert!(took >= Duration::from_millis(50));
}

#[test]
fn sleep_lasts_at_least_its_duration() {
    let h = runtime::go(|| {
        let t = Instant::now();
        runtime::sleep(Duration::from_millis(30));
        t.elapsed()
    });
    assert!(h.join().unwrap() >= Duration::from_millis(30));
}

#[test]
fn timers_fire_in_deadline_order() {
    // Deadlines 10 ms apart natively; under qemu-user on a loaded host a
    // woken G can wait tens of ms for its M, so spread them further there.
    let unit = if tests::under_qemu() { 40 } else { 4 };
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hs: Vec<_> = [50u64, 10, 30, 20, 40]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            runtime::go(move || {
                runtime::sleep(Duration::from_millis(ms * unit));
                order.lock().unwrap().push(ms);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![10, 20, 30, 40, 50]);
}

#[test]
fn lock_os_thread_keeps_the_thread_across_parks() {
    let h = runtime::go(|| {
        runtime::lock_os_thread();
        let first = tid();
        let mut same = true;
        for i in 0..50 {
            // Parks of every kind, with other Gs competing for the Ms.
            let busy: Vec<_> = (0..8).map(|_| runtime::go(runtime::yield_now)).collect();
            match i % 3 {
                0 => runtime::sleep(Duration::from_millis(1)),
                1 => runtime::yield_now(),
                _ => runtime::go(|| runtime::sleep(Duration::from_millis(1)))
                    .join()
                    .unwrap(),
            }
            for b in busy {
                b.join().unwrap();
            }
            same &= tid() == first;
        }
        runtime::unlock_os_thread();
        same
    });
    assert!(h.join().unwrap(), "a locked G changed threads");
}

#[test]
fn a_g_moves_between_threads_without_a_lock() {
    // The runtime's current-M lookup must not be cached across a park: the
    // G reads it again after every switch and must find itself.
    let h = runtime::go(|| {
        let me = runtime::current().unwrap().id;
        let mut threads = std::collections::HashSet::new();
        for _ in 0..2000 {
            let others: Vec<_> = (0..4).map(|_| runtime::go(runtime::yield_now)).collect();
            runtime::yield_now();
            assert_eq!(runtime::current().unwrap().id, me);
            threads.insert(tid());
            for o in others {
                o.join().unwrap();
            }
        }
        threads.len()
    });
    assert!(h.join().unwrap() >= 1);
}

#[test]
fn current_names_and_ids() {
    assert!(runtime::current().is_none());
    let h = runtime::GoBuilder::new()
        .name("named")
        .spawn(runtime::current)
        .unwrap();
    let id = h.id();
    let cur = h.join().unwrap().unwrap();
    assert_eq!(cur.id, id);
    assert_eq!(cur.name.as_deref(), Some("named"));
}

#[test]
fn invalid_stack_size_is_an_error() {
    for bad in [0usize, 100, usize::MAX / 2] {
        let err = runtime::GoBuilder::new()
            .stack_size(bad)
            .spawn(|| ())
            .unwrap_err();
        assert!(err.to_string().contains("stack"), "{err}");
    }
    let big = runtime::GoBuilder::new().stack_size(8 << 20).spawn(|| {
        // Use a few MiB of it.
        let v = std::hint::black_box([7u8; 3 << 20]);
        v[12345] as usize
    });
    assert_eq!(big.unwrap().join().unwrap(), 7);
}

#[test]
fn wait_group_from_gs_and_threads() {
    let wg = Arc::new(WaitGroup::new());
    let hits = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        wg.add(1);
        let (wg, hits) = (wg.clone(), hits.clone());
        runtime::go(move || {
            runtime::yield_now();
            hits.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    let wg2 = wg.clone();
    let waiter_g = runtime::go(move || wg2.wait());
    wg.wait();
    waiter_g.join().unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1000);
}

#[test]
fn stats_count_gs_by_status() {
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let hs: Vec<_> = (0..500)
        .map(|_| {
            let wg = wg.clone();
            runtime::go(move || wg.wait())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while runtime::stats().waiting_gs < 500 {
        assert!(
            Instant::now() < deadline,
            "Gs never parked: {:?}",
            runtime::stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = runtime::stats();
    assert!(s.mcount >= 1 && s.procs >= 1, "{s:?}");
    assert!(s.live_stacks >= 500, "{s:?}");
    wg.done();
    for h in hs {
        h.join().unwrap();
    }
}

/// Symptom guarded: a G that yields by swapping into `runnext` is taken by
/// another M's steal before its registers are saved, and runs twice or on a
/// stale stack (wrong sums, a crash or a hang). Each G blocks its M now and
/// then, so the other M steals the G waiting in that P's `runnext`.
#[test]
fn yielding_gs_survive_runnext_thieves() {
    const ROUNDS: u64 = 50_000;
    let hs: Vec<_> = (0..4u64)
        .map(|k| {
            runtime::go(move || {
                let mut local = [k; 16];
                for i in 0..ROUNDS {
                    local[(i % 16) as usize] += 1;
                    runtime::yield_now();
                    if i % 2_000 == 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
                local.iter().sum::<u64>()
            })
        })
        .collect();
    for (k, h) in (0..4u64).zip(hs) {
        assert_eq!(h.join().unwrap(), 16 * k + ROUNDS);
    }
}
