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
//! - `tcp_echo`: the multi-thread runtime; `tokio::net`, a task per
//!   accepted connection and a task per client.

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
        Workload::TcpEcho => {
            let rt = Builder::new_multi_thread().enable_all().build().unwrap();
            bench_tcp_echo(&rt, a);
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
            harness::report_yield(IMPL, a.n, rep, d).kv("procs", 1).print();
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
            harness::report_spawn_join(IMPL, a.n, rep, d).kv("procs", workers).print();
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
        harness::report_parked(IMPL, n, p).kv("procs", workers).print();
    });
}

async fn echo_server(l: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut s, _)) = l.accept().await else { continue };
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
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().unwrap();
        tokio::spawn(echo_server(l));
        tcp_echo_once(addr, harness::warmup_n(Workload::TcpEcho, a.n)).await;
        for rep in 0..a.reps {
            let d = tcp_echo_once(addr, a.n).await;
            harness::report_tcp_echo(IMPL, a.n, rep, d).kv("workers", workers).print();
        }
    });
}
