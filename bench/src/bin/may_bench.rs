//! `may`'s side of the scheduler benchmarks (protocol: `src/lib.rs`).
//!
//! Same shapes as `gort_bench`, with may's defaults (workers = CPUs, pinned;
//! 32 KiB coroutine stacks with an mprotect guard page):
//!
//! - `yield`: `may::config().set_workers(1)`; a coroutine spawns two that
//!   each call `may::coroutine::yield_now` N times, then joins them.
//! - `spawn_join`: from inside a coroutine, spawn N, then join them all.
//! - `parked`: from inside a coroutine, N coroutines each `wait` on one
//!   `may::sync::SyncFlag`; `fire` opens it. may needs one extra memory
//!   mapping per stack (its guard page), so it stops near `vm.max_map_count`
//!   / 2 coroutines; the failure is reported, not hidden.
//! - `skynet`: each inner coroutine spawns its 10 children and joins their
//!   handles (results travel in the handles).
//! - `mutex`: from inside a coroutine, 100 coroutines each lock one
//!   `may::sync::Mutex<u64>` K times, incrementing it; joined.
//! - `chan_pingpong`: two coroutines, two `may::sync::mpsc::channel`s (may
//!   has no bounded or rendezvous channel; with one value in flight an
//!   unbounded channel does the same work).
//! - `chan_mpmc`: 4 sending and 4 receiving coroutines on one
//!   `may::sync::mpmc::channel` (unbounded: may has no bounded one, so
//!   senders never wait).
//! - `tcp_echo`: `may::net`, a coroutine per accepted connection and a
//!   coroutine per client.
//! - `blocking`, `blocking_read`: `may::config().set_workers(1)`; coroutine
//!   B waits on a `may::sync::mpsc::channel`; coroutine A sends it
//!   `Instant::now()`, makes the plain blocking call
//!   ([`harness::Blocker`]), then receives B's delay on a second channel.

use harness::{Args, Parked, Workload};
use may::coroutine::JoinHandle;
use may::sync::SyncFlag;
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const IMPL: &str = "may";

/// `may::coroutine::Builder::spawn`, the form that returns spawn errors
/// instead of panicking (`go!` unwraps them).
fn spawn<F, T>(f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: may's spawn is unsafe because a coroutine that touches
    // thread-local storage or overflows its stack is undefined behaviour. The
    // closures here use no TLS and only a few stack frames.
    unsafe { may::coroutine::Builder::new().spawn(f) }
}

/// Spawns unit `i` of `n`, or reports why may could not and exits. may
/// panics inside `spawn` when it cannot map a stack (generator's
/// `Stack::new` unwraps the mmap/mprotect error) rather than returning the
/// error, so the panic is caught too. The process exits at once: once the
/// map limit is reached even `malloc` fails, so unwinding further is not
/// reliable.
fn spawn_or_exit<F, T>(w: Workload, n: usize, i: usize, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let err = match catch_unwind(AssertUnwindSafe(|| spawn(f))) {
        Ok(Ok(h)) => return h,
        Ok(Err(e)) => e.to_string(),
        Err(p) => panic_message(&*p),
    };
    harness::error_line(w, IMPL, n, i, &err);
    std::process::exit(1);
}

fn main() {
    let a = harness::args(IMPL);
    if matches!(
        a.workload,
        Workload::Yield | Workload::Blocking | Workload::BlockingRead
    ) {
        may::config().set_workers(1);
    }
    let workers = may::config().get_workers();
    spawn(move || match a.workload {
        Workload::Yield => bench_yield(a, workers),
        Workload::SpawnJoin => bench_spawn_join(a, workers),
        Workload::Parked => bench_parked(a, workers),
        Workload::Skynet => bench_skynet(a, workers),
        Workload::Mutex => bench_mutex(a, workers),
        Workload::ChanPingPong => bench_pingpong(a, workers),
        Workload::ChanMpmc => bench_mpmc(a, workers),
        Workload::TcpEcho => bench_tcp_echo(a, workers),
        Workload::Blocking | Workload::BlockingRead => bench_blocking(a, workers),
    })
    .expect("may_bench: spawn the benchmark coroutine")
    .join()
    .expect("may_bench: the benchmark coroutine panicked");
}

fn yield_once(n: usize) -> Duration {
    let body = move || {
        for _ in 0..n {
            may::coroutine::yield_now();
        }
    };
    let t = Instant::now();
    let a = spawn(body).unwrap();
    let b = spawn(body).unwrap();
    a.join().unwrap();
    b.join().unwrap();
    t.elapsed()
}

fn bench_yield(a: Args, workers: usize) {
    yield_once(harness::warmup_n(Workload::Yield, a.n));
    for rep in 0..a.reps {
        let d = yield_once(a.n);
        harness::report_yield(IMPL, a.n, rep, d)
            .kv("procs", workers)
            .print();
    }
}

fn spawn_join_once(n: usize) -> Duration {
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| spawn_or_exit(Workload::SpawnJoin, n, i, move || i))
        .collect();
    let mut sum = 0;
    for h in handles {
        sum += h.join().unwrap();
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_spawn_join(a: Args, workers: usize) {
    spawn_join_once(harness::warmup_n(Workload::SpawnJoin, a.n));
    for rep in 0..a.reps {
        let d = spawn_join_once(a.n);
        harness::report_spawn_join(IMPL, a.n, rep, d)
            .kv("procs", workers)
            .print();
    }
}

fn bench_parked(a: Args, workers: usize) {
    let n = a.n;
    let gate = Arc::new(SyncFlag::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let rss_before_kib = harness::rss_kib();
    let t = Instant::now();
    for i in 0..n {
        let (g, arr) = (gate.clone(), arrived.clone());
        handles.push(spawn_or_exit(Workload::Parked, n, i, move || {
            arr.fetch_add(1, Ordering::Relaxed);
            g.wait();
        }));
    }
    while arrived.load(Ordering::Relaxed) < n {
        may::coroutine::sleep(Duration::from_millis(1));
    }
    let create = t.elapsed();
    // Let the last arrivals finish parking (they counted just before).
    may::coroutine::sleep(Duration::from_millis(10));
    let rss_parked_kib = harness::rss_kib();
    let t = Instant::now();
    gate.fire();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let release = t.elapsed();
    let p = Parked {
        rss_before_kib,
        rss_parked_kib,
        create,
        release,
    };
    harness::report_parked(IMPL, n, p)
        .kv("procs", workers)
        .print();
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Leaves of the skynet tree being run, and coroutines it spawned so far
/// (for the error line if may cannot map a stack).
static SKYNET_N: AtomicUsize = AtomicUsize::new(0);
static SKYNET_SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// One skynet node, as in `gort_bench`.
fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / harness::SKYNET_FANOUT;
    let n = SKYNET_N.load(Ordering::Relaxed);
    let children: [_; harness::SKYNET_FANOUT as usize] = core::array::from_fn(|i| {
        let reached = SKYNET_SPAWNED.fetch_add(1, Ordering::Relaxed);
        spawn_or_exit(Workload::Skynet, n, reached, move || {
            skynet(num + i as u64 * sub, sub)
        })
    });
    children.into_iter().map(|h| h.join().unwrap()).sum()
}

fn bench_skynet(a: Args, workers: usize) {
    SKYNET_N.store(a.n, Ordering::Relaxed);
    skynet(0, harness::warmup_n(Workload::Skynet, a.n) as u64);
    for rep in 0..a.reps {
        SKYNET_SPAWNED.store(0, Ordering::Relaxed);
        let t = Instant::now();
        let sum = skynet(0, a.n as u64);
        harness::report_skynet(IMPL, a.n, rep, t.elapsed(), sum)
            .kv("procs", workers)
            .print();
    }
}

/// 100 coroutines, `k` lock/increment/unlock each on one mutex.
fn mutex_once(k: usize) -> Duration {
    let m = Arc::new(may::sync::Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..harness::MUTEX_UNITS)
        .map(|i| {
            let m = m.clone();
            spawn_or_exit(Workload::Mutex, k, i, move || {
                for _ in 0..k {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let d = t.elapsed();
    assert_eq!(
        *m.lock().unwrap(),
        (harness::MUTEX_UNITS * k) as u64,
        "may_bench: lost update"
    );
    d
}

fn bench_mutex(a: Args, workers: usize) {
    mutex_once(harness::warmup_n(Workload::Mutex, a.n));
    for rep in 0..a.reps {
        let d = mutex_once(a.n);
        harness::report_mutex(IMPL, a.n, rep, d)
            .kv("procs", workers)
            .print();
    }
}

fn pingpong_once(n: usize) -> Duration {
    let (ping_tx, ping_rx) = may::sync::mpsc::channel::<usize>();
    let (pong_tx, pong_rx) = may::sync::mpsc::channel::<usize>();
    let echo = spawn(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v).unwrap();
        }
    })
    .expect("may_bench: spawn");
    let t = Instant::now();
    for i in 0..n {
        ping_tx.send(i).unwrap();
        black_box(pong_rx.recv().unwrap());
    }
    let d = t.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    d
}

fn bench_pingpong(a: Args, workers: usize) {
    pingpong_once(harness::warmup_n(Workload::ChanPingPong, a.n));
    for rep in 0..a.reps {
        let d = pingpong_once(a.n);
        harness::report_pingpong(IMPL, a.n, rep, d)
            .kv("procs", workers)
            .print();
    }
}

fn mpmc_once(n: usize) -> Duration {
    let units = harness::MPMC_UNITS;
    let per = n / units;
    let (tx, rx) = may::sync::mpmc::channel::<usize>();
    let t = Instant::now();
    let receivers: Vec<_> = (0..units)
        .map(|_| {
            let rx = rx.clone();
            spawn(move || rx.iter().fold(0usize, |a, v| a.wrapping_add(v)))
                .expect("may_bench: spawn")
        })
        .collect();
    let senders: Vec<_> = (0..units)
        .map(|_| {
            let tx = tx.clone();
            spawn(move || (0..per).for_each(|i| tx.send(i).unwrap())).expect("may_bench: spawn")
        })
        .collect();
    drop((tx, rx));
    senders.into_iter().for_each(|h| h.join().unwrap());
    let sum = receivers
        .into_iter()
        .fold(0usize, |a, h| a.wrapping_add(h.join().unwrap()));
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_mpmc(a: Args, workers: usize) {
    mpmc_once(harness::warmup_n(Workload::ChanMpmc, a.n));
    for rep in 0..a.reps {
        let d = mpmc_once(a.n);
        harness::report_mpmc(
            IMPL,
            a.n / harness::MPMC_UNITS * harness::MPMC_UNITS,
            rep,
            d,
        )
        .kv("procs", workers)
        .print();
    }
}

/// Accepts forever on `l`, echoing, one coroutine per connection.
fn echo_server(l: may::net::TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        spawn(move || {
            s.set_nodelay(true).ok();
            harness::echo_serve(&mut s);
        })
        .expect("may_bench: spawn a connection coroutine");
    }
}

fn tcp_echo_once(addr: std::net::SocketAddr, conns: usize) -> Duration {
    let t = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            spawn(move || {
                let mut c = may::net::TcpStream::connect(addr).expect("connect");
                c.set_nodelay(true).unwrap();
                harness::echo_client(&mut c);
            })
            .expect("may_bench: spawn a client coroutine")
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    t.elapsed()
}

fn bench_tcp_echo(a: Args, workers: usize) {
    let l = may::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().unwrap();
    spawn(move || echo_server(l)).expect("may_bench: spawn the server");
    tcp_echo_once(addr, harness::warmup_n(Workload::TcpEcho, a.n));
    for rep in 0..a.reps {
        let d = tcp_echo_once(addr, a.n);
        harness::report_tcp_echo(IMPL, a.n, rep, d)
            .kv("workers", workers)
            .print();
    }
}

/// `n` rounds of: A (this coroutine) wakes B, then blocks its worker in
/// plain code; B's delay of each round.
fn blocking_once(blocker: &harness::Blocker, n: usize) -> Vec<Duration> {
    use may::sync::mpsc;
    let (wake_tx, wake_rx) = mpsc::channel::<Instant>();
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let b = spawn(move || {
        for sent in wake_rx.iter() {
            done_tx.send(sent.elapsed()).unwrap();
        }
    })
    .unwrap();
    let delays = blocker.rounds(n, |t| wake_tx.send(t).unwrap(), || done_rx.recv().unwrap());
    drop(wake_tx);
    b.join().unwrap();
    delays
}

fn bench_blocking(a: Args, workers: usize) {
    let blocker = harness::Blocker::new(a.workload);
    blocking_once(&blocker, harness::warmup_n(a.workload, a.n));
    for rep in 0..a.reps {
        let delays = blocking_once(&blocker, a.n);
        harness::report_blocking(a.workload, IMPL, rep, &delays)
            .kv("procs", workers)
            .print();
    }
}
