//! tokio's side of the scheduler benchmarks (protocol: `src/lib.rs`).
//!
//! tokio tasks are stackless futures, so the workloads are the async
//! spelling of the same programs, as `#[tokio::main]` would run them:
//!
//! - `yield`: a current-thread runtime with all drivers enabled (what
//!   `#[tokio::main(flavor = "current_thread")]` builds); two tasks each
//!   `tokio::task::yield_now().await` N times.
//! - `spawn_join`: the multi-thread runtime (workers = CPUs); inside
//!   `block_on`, `tokio::spawn` N tasks, then await every handle.
//! - `parked`: the multi-thread runtime; N tasks each await one
//!   `tokio::sync::Notify` (registered with `enable` before counting
//!   themselves, so `notify_waiters` cannot miss one).
//! - `skynet`: the multi-thread runtime; each inner task `tokio::spawn`s its
//!   10 children and awaits their handles (a boxed future: async recursion).
//! - `mutex`: the multi-thread runtime; 100 tasks each
//!   `tokio::sync::Mutex<u64>::lock().await` K times, incrementing it (the
//!   idiomatic async mutex, which queues waiters FIFO); awaited.
//! - `chan_pingpong`: the multi-thread runtime; two tasks, two
//!   `tokio::sync::mpsc::channel(1)`s (tokio has no rendezvous channel).
//! - `chan_mpmc`: the multi-thread runtime; one `mpsc::channel(128)`, 4
//!   sending tasks, and 4 receiving tasks sharing the receiver behind a
//!   `tokio::sync::Mutex` (tokio's channels have one consumer; this is the
//!   usual way to share one).
//! - `tcp_echo`: the multi-thread runtime; `tokio::net`, a task per
//!   accepted connection and a task per client.
//! - `blocking`, `blocking_read`: the multi-thread runtime with one worker
//!   thread; task B awaits a `tokio::sync::mpsc::channel(1)`; task A sends
//!   it `Instant::now()`, then makes the plain blocking call inside the
//!   task ([`harness::Blocker`]: what code that forgets `spawn_blocking` or
//!   `block_in_place` does), then awaits B's delay on a second channel. With
//!   one worker nothing can run B until A's call returns; tokio has no
//!   monitor that would move it.

use harness::{Args, Parked, Workload};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;

const IMPL: &str = "tokio";

fn main() {
    let a = harness::args(IMPL);
    match a.workload {
        Workload::Yield => {
            let rt = Builder::new_current_thread().enable_all().build().unwrap();
            bench_yield(&rt, a);
        }
        Workload::SpawnJoin => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_spawn_join(&rt, a);
        }
        Workload::Parked => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_parked(&rt, a);
        }
        Workload::Skynet => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_skynet(&rt, a);
        }
        Workload::Mutex => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_mutex(&rt, a);
        }
        Workload::ChanPingPong | Workload::ChanMpmc => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_chan(&rt, a);
        }
        Workload::TcpEcho => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_tcp_echo(&rt, a);
        }
        Workload::Blocking | Workload::BlockingRead => {
            let rt = Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            bench_blocking(&rt, a);
        }
    }
}

async fn yield_once(n: usize) -> Duration {
    let body = move || async move {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    };
    let t = Instant::now();
    let a = tokio::spawn(body());
    let b = tokio::spawn(body());
    a.await.unwrap();
    b.await.unwrap();
    t.elapsed()
}

fn bench_yield(rt: &Runtime, a: Args) {
    rt.block_on(async {
        yield_once(harness::warmup_n(Workload::Yield, a.n)).await;
        for rep in 0..a.reps {
            let d = yield_once(a.n).await;
            harness::report_yield(IMPL, a.n, rep, d)
                .kv("procs", 1)
                .print();
        }
    });
}

async fn spawn_join_once(n: usize) -> Duration {
    let t = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_spawn_join(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    rt.block_on(async {
        spawn_join_once(harness::warmup_n(Workload::SpawnJoin, a.n)).await;
        for rep in 0..a.reps {
            let d = spawn_join_once(a.n).await;
            harness::report_spawn_join(IMPL, a.n, rep, d)
                .kv("procs", workers)
                .print();
        }
    });
}

fn bench_parked(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    let n = a.n;
    rt.block_on(async {
        let gate = Arc::new(Notify::new());
        let arrived = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        let rss_before_kib = harness::rss_kib();
        let t = Instant::now();
        for _ in 0..n {
            let (gate, arrived) = (gate.clone(), arrived.clone());
            handles.push(tokio::spawn(async move {
                let opened = gate.notified();
                tokio::pin!(opened);
                opened.as_mut().enable();
                arrived.fetch_add(1, Ordering::Relaxed);
                opened.await;
            }));
        }
        while arrived.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let create = t.elapsed();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rss_parked_kib = harness::rss_kib();
        let t = Instant::now();
        gate.notify_waiters();
        for h in handles {
            h.await.unwrap();
        }
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
    });
}

/// One skynet node as a task body: boxed, because an async fn cannot hold
/// itself.
fn skynet(num: u64, size: u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let sub = size / harness::SKYNET_FANOUT;
        let children: [_; harness::SKYNET_FANOUT as usize] =
            core::array::from_fn(|i| tokio::spawn(skynet(num + i as u64 * sub, sub)));
        let mut sum = 0;
        for h in children {
            sum += h.await.unwrap();
        }
        sum
    })
}

fn bench_skynet(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    rt.block_on(async {
        skynet(0, harness::warmup_n(Workload::Skynet, a.n) as u64).await;
        for rep in 0..a.reps {
            let t = Instant::now();
            let sum = skynet(0, a.n as u64).await;
            harness::report_skynet(IMPL, a.n, rep, t.elapsed(), sum)
                .kv("procs", workers)
                .print();
        }
    });
}

/// 100 tasks, `k` lock/increment/unlock each on one mutex.
async fn mutex_once(k: usize) -> Duration {
    let m = Arc::new(tokio::sync::Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..harness::MUTEX_UNITS)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                for _ in 0..k {
                    *m.lock().await += 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    let d = t.elapsed();
    assert_eq!(
        *m.lock().await,
        (harness::MUTEX_UNITS * k) as u64,
        "tokio_bench: lost update"
    );
    d
}

fn bench_mutex(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    rt.block_on(async {
        mutex_once(harness::warmup_n(Workload::Mutex, a.n)).await;
        for rep in 0..a.reps {
            let d = mutex_once(a.n).await;
            harness::report_mutex(IMPL, a.n, rep, d)
                .kv("procs", workers)
                .print();
        }
    });
}

async fn pingpong_once(n: usize) -> Duration {
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<usize>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<usize>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v).await.unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..n {
        ping_tx.send(i).await.unwrap();
        black_box(pong_rx.recv().await.unwrap());
    }
    let d = t.elapsed();
    drop(ping_tx);
    echo.await.unwrap();
    d
}

async fn mpmc_once(n: usize) -> Duration {
    let units = harness::MPMC_UNITS;
    let per = n / units;
    let (tx, rx) = tokio::sync::mpsc::channel::<usize>(harness::MPMC_CAP);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let t = Instant::now();
    let receivers: Vec<_> = (0..units)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut sum = 0usize;
                while let Some(v) = rx.lock().await.recv().await {
                    sum = sum.wrapping_add(v);
                }
                sum
            })
        })
        .collect();
    let senders: Vec<_> = (0..units)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    tx.send(i).await.unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for s in senders {
        s.await.unwrap();
    }
    let mut sum = 0usize;
    for r in receivers {
        sum = sum.wrapping_add(r.await.unwrap());
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_chan(rt: &Runtime, a: Args) {
    let procs = rt.metrics().num_workers();
    rt.block_on(async {
        // Run inside a task, as the other workloads' units are tasks too.
        tokio::spawn(async move {
            let ping = a.workload == Workload::ChanPingPong;
            let warm = harness::warmup_n(a.workload, a.n);
            if ping {
                pingpong_once(warm).await
            } else {
                mpmc_once(warm).await
            };
            for rep in 0..a.reps {
                if ping {
                    let d = pingpong_once(a.n).await;
                    harness::report_pingpong(IMPL, a.n, rep, d)
                        .kv("procs", procs)
                        .print();
                } else {
                    let d = mpmc_once(a.n).await;
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
        })
        .await
        .unwrap();
    });
}

async fn echo_server(l: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            s.set_nodelay(true).ok();
            let mut buf = [0u8; harness::ECHO_BYTES];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn tcp_echo_once(addr: std::net::SocketAddr, conns: usize) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
                c.set_nodelay(true).unwrap();
                let msg = [7u8; harness::ECHO_BYTES];
                let mut buf = [0u8; harness::ECHO_BYTES];
                for _ in 0..harness::ECHO_REQUESTS {
                    c.write_all(&msg).await.unwrap();
                    c.read_exact(&mut buf).await.unwrap();
                }
                black_box(buf[0]);
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    t.elapsed()
}

fn bench_tcp_echo(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().unwrap();
        tokio::spawn(echo_server(l));
        tcp_echo_once(addr, harness::warmup_n(Workload::TcpEcho, a.n)).await;
        for rep in 0..a.reps {
            let d = tcp_echo_once(addr, a.n).await;
            harness::report_tcp_echo(IMPL, a.n, rep, d)
                .kv("workers", workers)
                .print();
        }
    });
}

/// `n` rounds of: task A wakes task B, then blocks its worker thread in
/// plain code; B's delay of each round. Both are spawned, so both run on
/// the one worker (`block_on` runs on the calling thread, not a worker).
async fn blocking_once(blocker: Arc<harness::Blocker>, n: usize) -> Vec<Duration> {
    use tokio::sync::mpsc;
    let (wake_tx, mut wake_rx) = mpsc::channel::<Instant>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<Duration>(1);
    let b = tokio::spawn(async move {
        while let Some(sent) = wake_rx.recv().await {
            done_tx.send(sent.elapsed()).await.unwrap();
        }
    });
    let a = tokio::spawn(async move {
        let mut delays = Vec::with_capacity(n);
        for _ in 0..n {
            blocker.prepare();
            wake_tx.send(Instant::now()).await.unwrap();
            blocker.block();
            delays.push(done_rx.recv().await.unwrap());
        }
        delays
    });
    let delays = a.await.unwrap();
    b.await.unwrap();
    delays
}

fn bench_blocking(rt: &Runtime, a: Args) {
    let workers = rt.metrics().num_workers();
    let blocker = Arc::new(harness::Blocker::new(a.workload));
    rt.block_on(async {
        blocking_once(blocker.clone(), harness::warmup_n(a.workload, a.n)).await;
        for rep in 0..a.reps {
            let delays = blocking_once(blocker.clone(), a.n).await;
            harness::report_blocking(a.workload, IMPL, rep, &delays)
                .kv("procs", workers)
                .print();
        }
    });
}
