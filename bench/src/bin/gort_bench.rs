//! gort's side of the scheduler benchmarks (protocol: `src/lib.rs`).
//!
//! - `yield`: `Builder::procs(1)`; a G spawns two Gs that each call
//!   `runtime::yield_now` N times, then joins them. Both are queued before
//!   either runs (the spawning G holds the only P until it parks in `join`),
//!   so every yield is a G→G switch on one P.
//! - `spawn_join`: default procs; from inside a G, `runtime::go` N times, then
//!   `join` every handle.
//! - `parked`: default procs; from inside a G, N Gs each `wait` on one
//!   `sync::WaitGroup` (count 1); `done` opens it.
//! - `skynet`: default procs; each inner G spawns its 10 children with
//!   `runtime::go` and joins their handles (results travel in the handles).
//! - `mutex`: default procs; from inside a G, 100 Gs each lock one
//!   `sync::Mutex<u64>` K times, incrementing it; joined.
//! - `chan_pingpong`: default procs; two Gs, two `chan::bounded(0)`
//!   channels; one sends and waits for the echo N times.
//! - `chan_mpmc`: default procs; 4 sender Gs and 4 receiver Gs on one
//!   `chan::bounded(128)`.
//! - `tcp_echo`: default procs; `runtime::net`, a G per accepted connection
//!   and a G per client.
//! - `blocking`, `blocking_read`: `Builder::procs(1)` (as `GORT_MAXPROCS=1`);
//!   G B waits on a `chan::bounded(1)`; G A sends it `Instant::now()`, then
//!   makes the plain blocking call ([`harness::Blocker`]: no
//!   `runtime::syscall`, nothing gort wrote), then receives B's measured
//!   delay on a second channel. The result line also counts sysmon's
//!   retakes of the rounds by cause (`retakes_kernel`, `retakes_slice`).

use harness::{Args, Parked, Workload};
use runtime::sync::WaitGroup;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const IMPL: &str = "gort";

fn main() {
    let a = harness::args(IMPL);
    if matches!(
        a.workload,
        Workload::Yield | Workload::Blocking | Workload::BlockingRead
    ) {
        runtime::Builder::new()
            .procs(1)
            .build()
            .expect("gort_bench: Builder::build");
    }
    let procs = runtime::stats().procs;
    // The whole workload runs inside a G: that is where gort code lives.
    runtime::go(move || match a.workload {
        Workload::Yield => bench_yield(a, procs),
        Workload::SpawnJoin => bench_spawn_join(a, procs),
        Workload::Parked => bench_parked(a, procs),
        Workload::Skynet => bench_skynet(a, procs),
        Workload::Mutex => bench_mutex(a, procs),
        Workload::ChanPingPong => bench_pingpong(a, procs),
        Workload::ChanMpmc => bench_mpmc(a, procs),
        Workload::TcpEcho => bench_tcp_echo(a, procs),
        Workload::Blocking | Workload::BlockingRead => bench_blocking(a, procs),
    })
    .join()
    .expect("gort_bench: the benchmark G panicked");
}

/// Two Gs yielding to each other `n` times each; the time for all `2n`
/// switches.
fn yield_once(n: usize) -> Duration {
    let body = move || {
        for _ in 0..n {
            runtime::yield_now();
        }
    };
    let t = Instant::now();
    let a = runtime::go(body);
    let b = runtime::go(body);
    a.join().unwrap();
    b.join().unwrap();
    t.elapsed()
}

fn bench_yield(a: Args, procs: usize) {
    yield_once(harness::warmup_n(Workload::Yield, a.n));
    for rep in 0..a.reps {
        let d = yield_once(a.n);
        harness::report_yield(IMPL, a.n, rep, d)
            .kv("procs", procs)
            .print();
    }
}

/// Spawns `n` Gs, then joins them in order.
fn spawn_join_once(n: usize) -> Duration {
    let t = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| runtime::go(move || i)).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.join().unwrap();
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_spawn_join(a: Args, procs: usize) {
    spawn_join_once(harness::warmup_n(Workload::SpawnJoin, a.n));
    for rep in 0..a.reps {
        let d = spawn_join_once(a.n);
        harness::report_spawn_join(IMPL, a.n, rep, d)
            .kv("procs", procs)
            .print();
    }
}

fn bench_parked(a: Args, procs: usize) {
    let n = a.n;
    let gate = Arc::new(WaitGroup::new());
    gate.add(1);
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let rss_before_kib = harness::rss_kib();
    let t = Instant::now();
    for i in 0..n {
        let (g, arr) = (gate.clone(), arrived.clone());
        let spawned = runtime::try_go(move || {
            arr.fetch_add(1, Ordering::Relaxed);
            g.wait();
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                harness::error_line(Workload::Parked, IMPL, n, i, &e.to_string());
                gate.done();
                handles.into_iter().for_each(|h| h.join().unwrap());
                std::process::exit(1);
            }
        }
    }
    while arrived.load(Ordering::Relaxed) < n {
        runtime::sleep(Duration::from_millis(1));
    }
    let create = t.elapsed();
    // The last arrivals are between their count and their park; wait until
    // the scheduler sees every one of them parked (untimed: stats() walks
    // all Gs).
    let waiting = loop {
        let st = runtime::stats();
        if st.waiting_gs >= n {
            break st.waiting_gs;
        }
        runtime::sleep(Duration::from_millis(1));
    };
    let rss_parked_kib = harness::rss_kib();
    let t = Instant::now();
    gate.done();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let release = t.elapsed();
    let p = Parked {
        rss_before_kib,
        rss_parked_kib,
        create,
        release,
    };
    let st = runtime::stats();
    harness::report_parked(IMPL, n, p)
        .kv("procs", procs)
        .kv("waiting", waiting)
        .kv("guard", format!("{:?}", st.guard.unwrap()))
        .print();
}

/// One skynet node: a leaf returns its number, an inner node spawns 10
/// children and sums what their handles return.
fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / harness::SKYNET_FANOUT;
    let children: [_; harness::SKYNET_FANOUT as usize] =
        core::array::from_fn(|i| runtime::go(move || skynet(num + i as u64 * sub, sub)));
    children.into_iter().map(|h| h.join().unwrap()).sum()
}

fn bench_skynet(a: Args, procs: usize) {
    skynet(0, harness::warmup_n(Workload::Skynet, a.n) as u64);
    for rep in 0..a.reps {
        let t = Instant::now();
        let sum = skynet(0, a.n as u64);
        harness::report_skynet(IMPL, a.n, rep, t.elapsed(), sum)
            .kv("procs", procs)
            .print();
    }
}

/// 100 Gs, `k` lock/increment/unlock each on one mutex.
fn mutex_once(k: usize) -> Duration {
    let m = Arc::new(runtime::sync::Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..harness::MUTEX_UNITS)
        .map(|_| {
            let m = m.clone();
            runtime::go(move || {
                for _ in 0..k {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let d = t.elapsed();
    assert_eq!(
        *m.lock(),
        (harness::MUTEX_UNITS * k) as u64,
        "gort_bench: lost update"
    );
    d
}

fn bench_mutex(a: Args, procs: usize) {
    mutex_once(harness::warmup_n(Workload::Mutex, a.n));
    for rep in 0..a.reps {
        let d = mutex_once(a.n);
        harness::report_mutex(IMPL, a.n, rep, d)
            .kv("procs", procs)
            .print();
    }
}

/// `n` round trips between two Gs over two unbuffered channels.
fn pingpong_once(n: usize) -> Duration {
    use runtime::chan;
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    let echo = runtime::go(move || {
        for v in &ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
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

fn bench_pingpong(a: Args, procs: usize) {
    pingpong_once(harness::warmup_n(Workload::ChanPingPong, a.n));
    for rep in 0..a.reps {
        let d = pingpong_once(a.n);
        harness::report_pingpong(IMPL, a.n, rep, d)
            .kv("procs", procs)
            .print();
    }
}

/// `n` values through one buffered channel, 4 sender Gs, 4 receiver Gs.
fn mpmc_once(n: usize) -> Duration {
    use runtime::chan;
    let units = harness::MPMC_UNITS;
    let per = n / units;
    let (tx, rx) = chan::bounded::<usize>(harness::MPMC_CAP);
    let t = Instant::now();
    let receivers: Vec<_> = (0..units)
        .map(|_| {
            let rx = rx.clone();
            runtime::go(move || rx.iter().fold(0usize, |a, v| a.wrapping_add(v)))
        })
        .collect();
    let senders: Vec<_> = (0..units)
        .map(|_| {
            let tx = tx.clone();
            runtime::go(move || (0..per).for_each(|i| tx.send(i).unwrap()))
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

fn bench_mpmc(a: Args, procs: usize) {
    mpmc_once(harness::warmup_n(Workload::ChanMpmc, a.n));
    for rep in 0..a.reps {
        let d = mpmc_once(a.n);
        harness::report_mpmc(
            IMPL,
            a.n / harness::MPMC_UNITS * harness::MPMC_UNITS,
            rep,
            d,
        )
        .kv("procs", procs)
        .print();
    }
}

/// Accepts forever on `l`, echoing `ECHO_BYTES`-byte requests, one G per
/// connection.
fn echo_server(l: runtime::net::TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        runtime::go(move || {
            s.set_nodelay(true).ok();
            harness::echo_serve(&mut s);
        });
    }
}

/// `conns` client Gs, each connecting and doing `ECHO_REQUESTS` exchanges.
fn tcp_echo_once(addr: std::net::SocketAddr, conns: usize) -> Duration {
    let t = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            runtime::go(move || {
                let mut c = runtime::net::TcpStream::connect(addr).expect("connect");
                c.set_nodelay(true).unwrap();
                harness::echo_client(&mut c);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    t.elapsed()
}

fn bench_tcp_echo(a: Args, procs: usize) {
    let l = runtime::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().unwrap();
    runtime::go(move || echo_server(l));
    tcp_echo_once(addr, harness::warmup_n(Workload::TcpEcho, a.n));
    for rep in 0..a.reps {
        let d = tcp_echo_once(addr, a.n);
        harness::report_tcp_echo(IMPL, a.n, rep, d)
            .kv("procs", procs)
            .print();
    }
}

/// `n` rounds of: A (this G) wakes B, then blocks its thread in plain code;
/// B's delay of each round.
fn blocking_once(blocker: &harness::Blocker, n: usize) -> Vec<Duration> {
    use runtime::chan;
    let (wake_tx, wake_rx) = chan::bounded::<Instant>(1);
    let (done_tx, done_rx) = chan::bounded::<Duration>(1);
    let b = runtime::go(move || {
        for sent in &wake_rx {
            done_tx.send(sent.elapsed()).unwrap();
        }
    });
    let delays = blocker.rounds(n, |t| wake_tx.send(t).unwrap(), || done_rx.recv().unwrap());
    drop(wake_tx);
    b.join().unwrap();
    delays
}

fn bench_blocking(a: Args, procs: usize) {
    let blocker = harness::Blocker::new(a.workload);
    blocking_once(&blocker, harness::warmup_n(a.workload, a.n));
    for rep in 0..a.reps {
        let before = runtime::stats();
        let delays = blocking_once(&blocker, a.n);
        let after = runtime::stats();
        // Which of sysmon's rules moved the P each round.
        harness::report_blocking(a.workload, IMPL, rep, &delays)
            .kv("procs", procs)
            .kv(
                "retakes_kernel",
                after.retakes_kernel - before.retakes_kernel,
            )
            .kv("retakes_slice", after.retakes_slice - before.retakes_slice)
            .print();
    }
}
