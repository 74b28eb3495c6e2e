//! `runtime::block_on`: waiting for futures from Gs and plain threads, with
//! real async crates (async-channel, tokio) as the futures' wakers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Symptom: a G waiting in `block_on` holds its M (the other Gs stall), or
/// a wake from another G is lost and the receiver never returns.
#[test]
fn gs_exchange_over_an_async_channel() {
    let (tx, rx) = async_channel::bounded::<u64>(4);
    let n = 2000u64;
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            runtime::go(move || {
                let mut sum = 0;
                while let Ok(v) = runtime::block_on(rx.recv()) {
                    sum += v;
                }
                sum
            })
        })
        .collect();
    drop(rx);
    let producers: Vec<_> = (0..4)
        .map(|k| {
            let tx = tx.clone();
            runtime::go(move || {
                for i in 0..n {
                    runtime::block_on(tx.send(k * n + i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    let total: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    let m = 4 * n;
    assert_eq!(total, m * (m - 1) / 2);
}

/// Symptom: with one P, a G parked in `block_on` keeps the only M, so the
/// G that would send never runs (a hang).
#[test]
fn a_parked_block_on_frees_the_only_p() {
    let o = tests::scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "eco_block_on_one_p",
        &[("GORT_MAXPROCS", "1")],
        Duration::from_secs(60),
    );
    o.assert_success();
    assert_eq!(o.value("sum"), Some("4950"), "{o}");
}

/// Symptom: a plain thread's `block_on` spins or never wakes.
#[test]
fn a_plain_thread_blocks_until_a_g_sends() {
    let (tx, rx) = async_channel::bounded::<&str>(1);
    let h = runtime::go(move || {
        runtime::sleep(Duration::from_millis(20));
        runtime::block_on(tx.send("hi")).unwrap();
    });
    assert_eq!(runtime::block_on(rx.recv()).unwrap(), "hi");
    h.join().unwrap();
}

/// The tokio recipe of docs/guide.md: a tokio runtime on threads of its own;
/// Gs spawn on its handle and `block_on` the `JoinHandle`, holding no M
/// while tokio's timer runs.
#[test]
fn gs_wait_for_tokio_tasks_through_its_handle() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let start = Instant::now();
    let gs: Vec<_> = (0..100u64)
        .map(|i| {
            let handle = handle.clone();
            runtime::go(move || {
                let task = handle.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    i * 2
                });
                runtime::block_on(task).unwrap()
            })
        })
        .collect();
    let sum: u64 = gs.into_iter().map(|g| g.join().unwrap()).sum();
    assert_eq!(sum, 9900);
    // A hundred 50 ms sleeps overlapped (generous bound: 2 shared cores).
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // Still true: the Gs parked rather than blocking Ms.
    assert!(
        runtime::stats().threaded_ms() < 60,
        "{:?}",
        runtime::stats()
    );
}

/// A future that wakes itself from another thread after a few polls, and
/// keeps its waker afterwards: late wakes after `block_on` returned must
/// not ready the G while it waits for something else.
struct Flaky {
    polls: Arc<AtomicUsize>,
    keep: Arc<std::sync::Mutex<Option<Waker>>>,
}

impl Future for Flaky {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        *self.keep.lock().unwrap() = Some(cx.waker().clone());
        if n >= 5 {
            return Poll::Ready(n);
        }
        let w = cx.waker().clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            w.wake();
        });
        Poll::Pending
    }
}

/// Symptom: a stale waker (kept by the future after completion) readies a G
/// that is parked in a `sleep`, which then returns early or the runtime
/// throws "ready: g is not waiting".
#[test]
fn a_stale_waker_does_not_wake_a_later_park() {
    let keep = Arc::new(std::sync::Mutex::new(None::<Waker>));
    let k = keep.clone();
    let h = runtime::go(move || {
        let polls = Arc::new(AtomicUsize::new(0));
        let n = runtime::block_on(Flaky {
            polls,
            keep: k.clone(),
        });
        let t = Instant::now();
        runtime::sleep(Duration::from_millis(200));
        (n, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..10 {
        if let Some(w) = keep.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }
    let (n, slept) = h.join().unwrap();
    assert_eq!(n, 5);
    assert!(slept >= Duration::from_millis(200), "{slept:?}");
}

/// Symptom: a panic inside `poll` is lost or kills the runtime.
#[test]
fn a_panicking_future_panics_the_caller() {
    let h = runtime::go(|| runtime::block_on(async { panic!("in poll") }));
    let err = h.join().unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"in poll"));
}
