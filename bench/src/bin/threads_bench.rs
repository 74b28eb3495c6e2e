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
//! - `tcp_echo`: `std::net`, blocking sockets, a thread (64 KiB stack) per
//!   accepted connection and per client.

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
        Workload::TcpEcho => bench_tcp_echo(a),
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
    assert_eq!(rc, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> usize {
    // SAFETY: as in `pin_to`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is writable.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", std::io::Error::last_os_error());
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
        harness::report_yield(IMPL, a.n, rep, d).kv("procs", 1).print();
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
        harness::report_spawn_join(IMPL, a.n, rep, d).kv("procs", cpus).print();
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

/// Spawns a thread with a small stack (the units do little).
fn small_thread<F: FnOnce() + Send + 'static>(f: F) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .expect("threads_bench: spawn a thread")
}

fn echo_server(l: std::net::TcpListener) {
    use std::io::{Read, Write};
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        small_thread(move || {
            s.set_nodelay(true).ok();
            let mut buf = [0u8; harness::ECHO_BYTES];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    return;
                }
            }
        });
    }
}

fn tcp_echo_once(addr: std::net::SocketAddr, conns: usize) -> Duration {
    use std::io::{Read, Write};
    let t = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            small_thread(move || {
                let mut c = std::net::TcpStream::connect(addr).expect("connect");
                c.set_nodelay(true).unwrap();
                let msg = [7u8; harness::ECHO_BYTES];
                let mut buf = [0u8; harness::ECHO_BYTES];
                for _ in 0..harness::ECHO_REQUESTS {
                    c.write_all(&msg).unwrap();
                    c.read_exact(&mut buf).unwrap();
                }
                black_box(buf[0]);
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
