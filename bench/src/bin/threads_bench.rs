//! OS threads' side of the scheduler benchmarks (protocol: `src/lib.rs`):
//! one kernel thread per unit, std only (plus `libc` for affinity and
//! `sched_yield`).
//!
//! - `yield`: two threads pinned to one CPU (`sched_setaffinity`), each
//!   calls `sched_yield` N times. This measures the kernel's scheduler, not
//!   a user-space runtime; and the kernel may hand the CPU straight back to
//!   the caller, so it is ns per `sched_yield` call.
//! - `spawn_join`: `std::thread::spawn` N threads (default 2 MiB stacks),
//!   then join them all. The driver uses N = 10,000, not 100,000.
//! - `parked`: N threads with 64 KiB stacks each wait on one
//!   `Mutex<bool>` + `Condvar`; `notify_all` opens it. The driver uses
//!   N = 10,000. A spawn that fails (thread limit) is reported with the
//!   count reached.
//! - `skynet`: each inner thread spawns its 10 children (64 KiB stacks) and
//!   joins them. The driver uses N = 10,000 leaves (11,111 threads).
//! - `mutex`: 100 threads (64 KiB stacks) each lock one
//!   `std::sync::Mutex<u64>` K times, incrementing it; joined.
//! - `chan_pingpong`: two threads, two `std::sync::mpsc::sync_channel(0)`s
//!   (rendezvous).
//! - `chan_mpmc`: one `sync_channel(128)`, 4 sending threads, and 4
//!   receiving threads sharing the receiver behind a `Mutex` (std's
//!   channel has one consumer).
//! - `tcp_echo`: `std::net`, blocking sockets, a thread (64 KiB stack) per
//!   accepted connection and per client.
//! - `blocking`, `blocking_read`: threads A and B pinned to one CPU (the
//!   kernel is the "worker"); B waits on a `std::sync::mpsc::channel`; A
//!   sends it `Instant::now()`, makes the plain blocking call
//!   ([`harness::Blocker`]), then receives B's delay on a second channel.
//!   The reference: the kernel runs B as soon as A blocks, if not before.

use harness::{Args, Parked, Workload};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

const IMPL: &str = "threads";

fn main() {
    let a = harness::args(IMPL);
    match a.workload {
        Workload::Yield => bench_yield(a),
        Workload::SpawnJoin => bench_spawn_join(a),
        Workload::Parked => bench_parked(a),
        Workload::Skynet => bench_skynet(a),
        Workload::Mutex => bench_mutex(a),
        Workload::ChanPingPong => bench_pingpong(a),
        Workload::ChanMpmc => bench_mpmc(a),
        Workload::TcpEcho => bench_tcp_echo(a),
        Workload::Blocking | Workload::BlockingRead => bench_blocking(a),
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` outlives the call.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> usize {
    // SAFETY: as in `pin_to`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is writable.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `set` is initialised and the index is in range.
    (0..libc::CPU_SETSIZE as usize)
        .find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .expect("no allowed CPU")
}

fn yield_once(n: usize) -> Duration {
    let cpu = first_allowed_cpu();
    let start = Arc::new(Barrier::new(3));
    let spawn = || {
        let start = start.clone();
        std::thread::spawn(move || {
            pin_to(cpu);
            start.wait();
            for _ in 0..n {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        })
    };
    let (a, b) = (spawn(), spawn());
    start.wait();
    let t = Instant::now();
    a.join().unwrap();
    b.join().unwrap();
    t.elapsed()
}

fn bench_yield(a: Args) {
    yield_once(harness::warmup_n(Workload::Yield, a.n));
    for rep in 0..a.reps {
        let d = yield_once(a.n);
        harness::report_yield(IMPL, a.n, rep, d)
            .kv("procs", 1)
            .print();
    }
}

fn spawn_join_once(n: usize) -> Duration {
    let t = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| std::thread::spawn(move || i)).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.join().unwrap();
    }
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_spawn_join(a: Args) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    spawn_join_once(harness::warmup_n(Workload::SpawnJoin, a.n));
    for rep in 0..a.reps {
        let d = spawn_join_once(a.n);
        harness::report_spawn_join(IMPL, a.n, rep, d)
            .kv("procs", cpus)
            .print();
    }
}

/// A gate threads wait on until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

fn bench_parked(a: Args) {
    let n = a.n;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gate = Arc::new(Gate::default());
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let rss_before_kib = harness::rss_kib();
    let t = Instant::now();
    for i in 0..n {
        let (g, arr) = (gate.clone(), arrived.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                arr.fetch_add(1, Ordering::Relaxed);
                g.wait();
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                harness::error_line(Workload::Parked, IMPL, n, i, &e.to_string());
                gate.open();
                handles.into_iter().for_each(|h| h.join().unwrap());
                std::process::exit(1);
            }
        }
    }
    while arrived.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let create = t.elapsed();
    std::thread::sleep(Duration::from_millis(10));
    let rss_parked_kib = harness::rss_kib();
    let t = Instant::now();
    gate.open();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let release = t.elapsed();
    let p = Parked {
        rss_before_kib,
        rss_parked_kib,
        create,
        release,
    };
    harness::report_parked(IMPL, n, p).kv("procs", cpus).print();
}

/// One skynet node on its own thread; `Err` if a spawn failed (thread
/// limit), after joining the children already started.
fn skynet(num: u64, size: u64) -> std::io::Result<u64> {
    if size == 1 {
        return Ok(num);
    }
    let sub = size / harness::SKYNET_FANOUT;
    let mut children = Vec::with_capacity(harness::SKYNET_FANOUT as usize);
    let mut failed = None;
    for i in 0..harness::SKYNET_FANOUT {
        let spawned = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || skynet(num + i * sub, sub));
        match spawned {
            Ok(h) => children.push(h),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let mut sum = 0;
    for h in children {
        match h.join().expect("a skynet thread panicked") {
            Ok(v) => sum += v,
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    failed.map_or(Ok(sum), Err)
}

fn bench_skynet(a: Args) {
    let run = |n: usize| {
        skynet(0, n as u64).unwrap_or_else(|e| {
            harness::error_line(Workload::Skynet, IMPL, a.n, 0, &e.to_string());
            std::process::exit(1);
        })
    };
    run(harness::warmup_n(Workload::Skynet, a.n));
    for rep in 0..a.reps {
        let t = Instant::now();
        let sum = run(a.n);
        harness::report_skynet(IMPL, a.n, rep, t.elapsed(), sum).print();
    }
}

/// 100 threads, `k` lock/increment/unlock each on one mutex.
fn mutex_once(k: usize) -> Duration {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let hs: Vec<_> = (0..harness::MUTEX_UNITS)
        .map(|_| {
            let m = m.clone();
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    for _ in 0..k {
                        *m.lock().unwrap() += 1;
                    }
                })
                .expect("threads_bench: spawn")
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let d = t.elapsed();
    assert_eq!(
        *m.lock().unwrap(),
        (harness::MUTEX_UNITS * k) as u64,
        "threads_bench: lost update"
    );
    d
}

fn bench_mutex(a: Args) {
    mutex_once(harness::warmup_n(Workload::Mutex, a.n));
    for rep in 0..a.reps {
        let d = mutex_once(a.n);
        harness::report_mutex(IMPL, a.n, rep, d)
            .kv(
                "procs",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )
            .print();
    }
}

fn pingpong_once(n: usize) -> Duration {
    let (ping_tx, ping_rx) = std::sync::mpsc::sync_channel::<usize>(0);
    let (pong_tx, pong_rx) = std::sync::mpsc::sync_channel::<usize>(0);
    let echo = std::thread::spawn(move || {
        for v in ping_rx.iter() {
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

fn bench_pingpong(a: Args) {
    pingpong_once(harness::warmup_n(Workload::ChanPingPong, a.n));
    for rep in 0..a.reps {
        let d = pingpong_once(a.n);
        harness::report_pingpong(IMPL, a.n, rep, d).print();
    }
}

fn mpmc_once(n: usize) -> Duration {
    let units = harness::MPMC_UNITS;
    let per = n / units;
    let (tx, rx) = std::sync::mpsc::sync_channel::<usize>(harness::MPMC_CAP);
    let rx = Arc::new(Mutex::new(rx));
    let t = Instant::now();
    let receivers: Vec<_> = (0..units)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut sum = 0usize;
                loop {
                    let v = rx.lock().unwrap().recv();
                    match v {
                        Ok(v) => sum = sum.wrapping_add(v),
                        Err(_) => return sum,
                    }
                }
            })
        })
        .collect();
    let senders: Vec<_> = (0..units)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || (0..per).for_each(|i| tx.send(i).unwrap()))
        })
        .collect();
    drop(tx);
    senders.into_iter().for_each(|h| h.join().unwrap());
    let sum = receivers
        .into_iter()
        .fold(0usize, |a, h| a.wrapping_add(h.join().unwrap()));
    let d = t.elapsed();
    black_box(sum);
    d
}

fn bench_mpmc(a: Args) {
    mpmc_once(harness::warmup_n(Workload::ChanMpmc, a.n));
    for rep in 0..a.reps {
        let d = mpmc_once(a.n);
        harness::report_mpmc(
            IMPL,
            a.n / harness::MPMC_UNITS * harness::MPMC_UNITS,
            rep,
            d,
        )
        .print();
    }
}

/// Spawns a thread with a small stack (the units do little).
fn small_thread<F: FnOnce() + Send + 'static>(f: F) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .expect("threads_bench: spawn a thread")
}

fn echo_server(l: std::net::TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        small_thread(move || {
            s.set_nodelay(true).ok();
            harness::echo_serve(&mut s);
        });
    }
}

fn tcp_echo_once(addr: std::net::SocketAddr, conns: usize) -> Duration {
    let t = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            small_thread(move || {
                let mut c = std::net::TcpStream::connect(addr).expect("connect");
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

fn bench_tcp_echo(a: Args) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().unwrap();
    small_thread(move || echo_server(l));
    tcp_echo_once(addr, harness::warmup_n(Workload::TcpEcho, a.n));
    for rep in 0..a.reps {
        let d = tcp_echo_once(addr, a.n);
        harness::report_tcp_echo(IMPL, a.n, rep, d).print();
    }
}

/// `n` rounds of: thread A (this one) wakes thread B, then blocks; B's
/// delay of each round. Both are pinned to `cpu`.
fn blocking_once(blocker: &harness::Blocker, cpu: usize, n: usize) -> Vec<Duration> {
    use std::sync::mpsc;
    let (wake_tx, wake_rx) = mpsc::channel::<Instant>();
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let b = small_thread(move || {
        pin_to(cpu);
        for sent in wake_rx {
            done_tx.send(sent.elapsed()).unwrap();
        }
    });
    let delays = blocker.rounds(n, |t| wake_tx.send(t).unwrap(), || done_rx.recv().unwrap());
    drop(wake_tx);
    b.join().unwrap();
    delays
}

fn bench_blocking(a: Args) {
    let cpu = first_allowed_cpu();
    // The writer thread of `blocking_read` starts before the pin: it is the
    // "other thread" and may run anywhere.
    let blocker = harness::Blocker::new(a.workload);
    pin_to(cpu);
    blocking_once(&blocker, cpu, harness::warmup_n(a.workload, a.n));
    for rep in 0..a.reps {
        let delays = blocking_once(&blocker, cpu, a.n);
        harness::report_blocking(a.workload, IMPL, rep, &delays)
            .kv("procs", 1)
            .print();
    }
}
