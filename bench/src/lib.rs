//! What every benchmark binary shares: the command line, the result lines,
//! and the process's resident memory.
//!
//! Each binary (`gort_bench`, `may_bench`, `tokio_bench`, `threads_bench`;
//! the Go program in `go/` speaks the same protocol) runs ONE workload per
//! process, because the runtimes are process-global and a resident-memory
//! delta needs a fresh process:
//!
//! ```text
//! <binary> <workload> <size> [reps]
//! ```
//!
//! - `yield N`: two units on one worker, each yields `N` times; prints ns
//!   per switch (elapsed / 2N).
//! - `spawn_join N`: from inside the runtime, spawn `N` units, then join
//!   them all; prints ns per unit.
//! - `parked N`: `N` units each block on one shared gate; prints the time
//!   until all are parked, the resident memory per unit, then releases and
//!   joins them.
//! - `skynet N`: the "skynet" fan-out/fan-in tree: a unit with `size` > 1
//!   spawns 10 children over its tenth of the range and sums their results;
//!   a leaf returns its number. `N` leaves (a power of 10), so
//!   [`skynet_units`]`(N)` units in all; prints ns per unit and checks the sum.
//! - `mutex K`: [`MUTEX_UNITS`] units on the default workers each lock one
//!   shared mutex, increment a counter and unlock, `K` times; prints ns per
//!   lock/unlock pair (elapsed / (units × K)).
//!
//! - `chan_pingpong N`: two units, two unbuffered channels (capacity 1
//!   where the implementation has no rendezvous channel); one sends a value
//!   on the first and waits for the reply on the second, `N` times; prints
//!   ns per round trip (two sends, two receives, two wake-ups).
//! - `chan_mpmc N`: one channel buffering 128 values; 4 senders send `N/4`
//!   values each, 4 receivers take them all; prints ns per value.
//!
//! - `tcp_echo N`: a loopback echo server (one unit per accepted
//!   connection) and `N` client units, each connecting and then doing
//!   [`ECHO_REQUESTS`] exchanges: write [`ECHO_BYTES`] bytes, read them
//!   back (`TCP_NODELAY` on both ends); prints ns per request (elapsed from
//!   the first client spawn to the last client done, connects included,
//!   over `N * ECHO_REQUESTS`) and requests per second.
//!
//! - `blocking N`: one worker (P, thread, `GOMAXPROCS`); unit B waits on a
//!   channel; `N` times, unit A sends B the time (B is now runnable on A's
//!   worker) and then makes a plain blocking call, `std::thread::sleep`
//!   ([`BLOCK`]) or a raw `nanosleep` in Go, that no runtime wraps; B sends
//!   back how long after the send it ran, and A waits for that answer
//!   before the next round. Prints the median delay (`ns_per_op`) and every
//!   delay (`delays_ns`): how long a runnable unit waits while another on
//!   its worker is stuck in the kernel.
//! - `blocking_read N`: the same, but A's blocking call is a plain `read(2)`
//!   of one byte from a pipe that a thread outside the runtime fills
//!   [`BLOCK`] after A asked for it ([`Blocker`]).
//!
//! `yield`, `spawn_join`, `skynet`, `mutex`, `chan_*`, `tcp_echo` and
//! `blocking*` run one warm-up ([`warmup_n`]) and then `reps` measured
//! repetitions in the process; `parked` runs once (the driver starts more
//! processes). Output, one line per measured repetition:
//!
//! ```text
//! result workload=yield impl=gort n=1000000 rep=0 ns_per_op=17.3 procs=1
//! result workload=parked impl=gort n=1000000 rep=0 create_ms=900.1 ns_per_op=900.1 rss_kib_per_unit=4.2 ...
//! error workload=parked impl=may n=1000000 reached=32000 msg="..."
//! ```
//!
//! `bench/driver.py` parses these lines and prints the table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The workloads (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// G→G switch through a yield, two units on one worker.
    Yield,
    /// A burst of spawns, then joins.
    SpawnJoin,
    /// Many units blocked on one gate.
    Parked,
    /// A fan-out/fan-in tree of units ("skynet").
    Skynet,
    /// Many units contending on one mutex.
    Mutex,
    /// Channels: a round trip over two unbuffered channels between two
    /// units.
    ChanPingPong,
    /// Channels: 4 senders and 4 receivers on one buffered channel.
    ChanMpmc,
    /// Loopback TCP echo: `N` connections, [`ECHO_REQUESTS`] request/response
    /// exchanges of [`ECHO_BYTES`] bytes each.
    TcpEcho,
    /// The delay before a woken unit runs while another unit on its worker
    /// sleeps in the kernel (`std::thread::sleep`, `nanosleep`).
    Blocking,
    /// As [`Workload::Blocking`], the blocking call a `read(2)` on a pipe.
    BlockingRead,
}

impl Workload {
    /// The name used on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Yield => "yield",
            Workload::SpawnJoin => "spawn_join",
            Workload::Parked => "parked",
            Workload::Skynet => "skynet",
            Workload::Mutex => "mutex",
            Workload::ChanPingPong => "chan_pingpong",
            Workload::ChanMpmc => "chan_mpmc",
            Workload::TcpEcho => "tcp_echo",
            Workload::Blocking => "blocking",
            Workload::BlockingRead => "blocking_read",
        }
    }
}

/// A parsed command line.
#[derive(Clone, Copy, Debug)]
pub struct Args {
    /// Which workload.
    pub workload: Workload,
    /// Its size: yields per unit, units per burst, or parked units.
    pub n: usize,
    /// Measured repetitions (`yield`, `spawn_join`).
    pub reps: usize,
}

/// Parses `<workload> <size> [reps]`; prints usage and exits on bad input.
pub fn args(imp: &str) -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let usage = |why: &str| -> ! {
        eprintln!(
            "{imp}_bench: {why}\nusage: {imp}_bench <yield|spawn_join|parked|skynet|mutex|chan_pingpong|chan_mpmc|tcp_echo|blocking|blocking_read> <size> [reps]"
        );
        std::process::exit(2);
    };
    if argv.len() < 3 || argv.len() > 4 {
        usage("wrong number of arguments");
    }
    let workload = match argv[1].as_str() {
        "yield" => Workload::Yield,
        "spawn_join" => Workload::SpawnJoin,
        "parked" => Workload::Parked,
        "skynet" => Workload::Skynet,
        "mutex" => Workload::Mutex,
        "chan_pingpong" => Workload::ChanPingPong,
        "chan_mpmc" => Workload::ChanMpmc,
        "tcp_echo" => Workload::TcpEcho,
        "blocking" => Workload::Blocking,
        "blocking_read" => Workload::BlockingRead,
        w => usage(&format!("unknown workload {w:?}")),
    };
    let n = parse_count(&argv[2]).unwrap_or_else(|| usage(&format!("bad size {:?}", argv[2])));
    if workload == Workload::Skynet && !is_power_of_10(n) {
        usage(&format!("skynet needs a power of 10 leaves, not {n}"));
    }
    let reps = match argv.get(3) {
        Some(s) => parse_count(s).unwrap_or_else(|| usage(&format!("bad reps {s:?}"))),
        None => 5,
    };
    Args { workload, n, reps }
}

/// A positive count; `_` separators allowed (`1_000_000`).
fn parse_count(s: &str) -> Option<usize> {
    s.replace('_', "").parse().ok().filter(|&n| n > 0)
}

/// The size of the warm-up run before the measured repetitions: for
/// `spawn_join` a full burst (so that stacks, G structs and task slabs
/// exist, as after any earlier burst of a long-running program); for `yield`
/// a tenth.
pub fn warmup_n(w: Workload, n: usize) -> usize {
    match w {
        Workload::SpawnJoin => n,
        _ => (n / 10).max(1),
    }
}

/// Resident memory of this process in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// One `result` line under construction.
#[derive(Debug)]
pub struct Line(String);

impl Line {
    /// `result workload=.. impl=.. n=.. rep=..`
    pub fn new(w: Workload, imp: &str, n: usize, rep: usize) -> Line {
        Line(format!(
            "result workload={} impl={imp} n={n} rep={rep}",
            w.name()
        ))
    }

    /// Adds `key=value`.
    pub fn kv(mut self, key: &str, value: impl std::fmt::Display) -> Line {
        write!(self.0, " {key}={value}").unwrap();
        self
    }

    /// Adds `key=<value with 2 decimals>`.
    pub fn f(self, key: &str, value: f64) -> Line {
        self.kv(key, format!("{value:.2}"))
    }

    /// Prints the line to stdout (flushed: a crash after it keeps it).
    pub fn print(self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.0).unwrap();
        out.flush().unwrap();
    }
}

/// Prints an `error` line: the workload could not run at size `n`;
/// `reached` units existed when it failed.
pub fn error_line(w: Workload, imp: &str, n: usize, reached: usize, msg: &str) {
    let msg = msg.replace(['"', '\n'], " ");
    println!(
        "error workload={} impl={imp} n={n} reached={reached} msg=\"{msg}\"",
        w.name()
    );
}

/// Nanoseconds per operation.
pub fn ns_per(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

/// The `result` line of a `yield` repetition: `n` yields per unit,
/// two units, so `2n` switches.
pub fn report_yield(imp: &str, n: usize, rep: usize, d: Duration) -> Line {
    Line::new(Workload::Yield, imp, n, rep).f("ns_per_op", ns_per(d, 2 * n))
}

/// The `result` line of a `spawn_join` repetition.
pub fn report_spawn_join(imp: &str, n: usize, rep: usize, d: Duration) -> Line {
    Line::new(Workload::SpawnJoin, imp, n, rep).f("ns_per_op", ns_per(d, n))
}

/// What a `parked` run measured.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    /// Resident memory before the first spawn, KiB.
    pub rss_before_kib: u64,
    /// Resident memory once all units are parked, KiB.
    pub rss_parked_kib: u64,
    /// From the first spawn until all units are parked.
    pub create: Duration,
    /// From opening the gate until all units are joined.
    pub release: Duration,
}

/// The `result` line of a `parked` run.
pub fn report_parked(imp: &str, n: usize, p: Parked) -> Line {
    let delta = p.rss_parked_kib.saturating_sub(p.rss_before_kib);
    Line::new(Workload::Parked, imp, n, 0)
        .f("ns_per_op", ns_per(p.create, n))
        .f("create_ms", p.create.as_secs_f64() * 1e3)
        .f("release_ms", p.release.as_secs_f64() * 1e3)
        .kv("rss_before_kib", p.rss_before_kib)
        .kv("rss_parked_kib", p.rss_parked_kib)
        .kv(
            "rss_kib_per_unit",
            format!("{:.3}", delta as f64 / n as f64),
        )
}

// ---------------------------------------------------------------------------
// skynet
// ---------------------------------------------------------------------------

/// Children of every inner unit of the skynet tree.
pub const SKYNET_FANOUT: u64 = 10;

fn is_power_of_10(mut n: usize) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

/// Units in a skynet tree with `leaves` leaves: 1 + 10 + ... + leaves.
pub fn skynet_units(leaves: usize) -> usize {
    let (mut level, mut total) = (1, 0);
    while level <= leaves {
        total += level;
        level *= SKYNET_FANOUT as usize;
    }
    total
}

/// What a skynet tree of `leaves` leaves sums to: 0 + 1 + ... + leaves - 1.
pub fn skynet_sum(leaves: usize) -> u64 {
    let n = leaves as u64;
    n * (n - 1) / 2
}

/// The `result` line of a `skynet` repetition; exits if the sum is wrong.
pub fn report_skynet(imp: &str, n: usize, rep: usize, d: Duration, sum: u64) -> Line {
    if sum != skynet_sum(n) {
        eprintln!(
            "{imp}_bench: skynet({n}) summed to {sum}, not {}",
            skynet_sum(n)
        );
        std::process::exit(1);
    }
    let units = skynet_units(n);
    Line::new(Workload::Skynet, imp, n, rep)
        .f("ns_per_op", ns_per(d, units))
        .f("total_ms", d.as_secs_f64() * 1e3)
        .kv("units", units)
}

/// Units contending in the `mutex` workload.
pub const MUTEX_UNITS: usize = 100;

/// The `result` line of a `mutex` repetition: [`MUTEX_UNITS`] units, `k`
/// lock/unlock pairs each.
pub fn report_mutex(imp: &str, k: usize, rep: usize, d: Duration) -> Line {
    Line::new(Workload::Mutex, imp, k, rep)
        .f("ns_per_op", ns_per(d, MUTEX_UNITS * k))
        .kv("units", MUTEX_UNITS)
}

/// Senders and receivers in the `chan_mpmc` workload, each.
pub const MPMC_UNITS: usize = 4;

/// Buffer of the `chan_mpmc` channel.
pub const MPMC_CAP: usize = 128;

/// The `result` line of a `chan_pingpong` repetition: `n` round trips.
pub fn report_pingpong(imp: &str, n: usize, rep: usize, d: Duration) -> Line {
    Line::new(Workload::ChanPingPong, imp, n, rep).f("ns_per_op", ns_per(d, n))
}

/// The `result` line of a `chan_mpmc` repetition: `n` values.
pub fn report_mpmc(imp: &str, n: usize, rep: usize, d: Duration) -> Line {
    Line::new(Workload::ChanMpmc, imp, n, rep).f("ns_per_op", ns_per(d, n))
}

/// `tcp_echo`: request/response exchanges per connection.
pub const ECHO_REQUESTS: usize = 100;
/// `tcp_echo`: bytes per request (the response echoes them).
pub const ECHO_BYTES: usize = 64;

/// `tcp_echo`, server side of one connection on a blocking-style stream
/// (gort, may, OS threads): echo `ECHO_BYTES`-byte requests until the
/// client goes away.
pub fn echo_serve(s: &mut (impl std::io::Read + std::io::Write)) {
    let mut buf = [0u8; ECHO_BYTES];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            return;
        }
    }
}

/// `tcp_echo`, client side of one connection on a blocking-style stream:
/// `ECHO_REQUESTS` request/response exchanges.
pub fn echo_client(c: &mut (impl std::io::Read + std::io::Write)) {
    let msg = [7u8; ECHO_BYTES];
    let mut buf = [0u8; ECHO_BYTES];
    for _ in 0..ECHO_REQUESTS {
        c.write_all(&msg).unwrap();
        c.read_exact(&mut buf).unwrap();
    }
    std::hint::black_box(buf[0]);
}

/// The `result` line of a `tcp_echo` repetition with `conns` connections.
pub fn report_tcp_echo(imp: &str, conns: usize, rep: usize, d: Duration) -> Line {
    let requests = conns * ECHO_REQUESTS;
    Line::new(Workload::TcpEcho, imp, conns, rep)
        .f("ns_per_op", ns_per(d, requests))
        .f("rps", requests as f64 / d.as_secs_f64())
}

// ---------------------------------------------------------------------------
// blocking
// ---------------------------------------------------------------------------

/// `blocking*`: how long unit A's plain blocking call lasts.
pub const BLOCK: Duration = Duration::from_millis(20);

/// Unit A's plain blocking call in `blocking` and `blocking_read`. Rust's
/// side of every peer uses this, so that the call is the same code
/// everywhere: `std::thread::sleep`, or a `libc::read` of one byte from a
/// pipe whose writer is a plain OS thread (started here, outside every
/// runtime, so that it needs no worker of the runtime under test).
#[derive(Debug)]
pub struct Blocker {
    /// `None` for `blocking`: sleep.
    pipe: Option<Pipe>,
}

#[derive(Debug)]
struct Pipe {
    read_fd: libc::c_int,
    /// Each message asks the writer thread for one byte, [`BLOCK`] later.
    arm: std::sync::mpsc::Sender<()>,
}

impl Blocker {
    /// The blocker of workload `w` (`Blocking` or `BlockingRead`).
    pub fn new(w: Workload) -> Blocker {
        if w != Workload::BlockingRead {
            return Blocker { pipe: None };
        }
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
        let (read_fd, write_fd) = (fds[0], fds[1]);
        let (arm, armed) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("pipe-writer".into())
            .spawn(move || {
                for () in armed {
                    std::thread::sleep(BLOCK);
                    // SAFETY: `write_fd` stays open for the life of the
                    // process (never closed); the buffer is one valid byte.
                    let n = unsafe { libc::write(write_fd, [1u8].as_ptr().cast(), 1) };
                    assert_eq!(n, 1, "pipe write: {}", std::io::Error::last_os_error());
                }
            })
            .expect("spawn the pipe writer thread");
        Blocker {
            pipe: Some(Pipe { read_fd, arm }),
        }
    }

    /// Unit A's side of `n` rounds, for the peers whose units block
    /// (tokio awaits instead): each round asks the writer for its byte,
    /// sends B the time with `wake`, makes the blocking call, then waits
    /// for B's delay with `answer`. Returns the delays.
    pub fn rounds(
        &self,
        n: usize,
        mut wake: impl FnMut(Instant),
        mut answer: impl FnMut() -> Duration,
    ) -> Vec<Duration> {
        (0..n)
            .map(|_| {
                self.prepare();
                wake(Instant::now());
                self.block();
                answer()
            })
            .collect()
    }

    /// Before A wakes B: asks the writer for a byte ([`BLOCK`] from now).
    pub fn prepare(&self) {
        if let Some(p) = &self.pipe {
            p.arm.send(()).expect("the pipe writer thread is gone");
        }
    }

    /// A's plain blocking call: sleeps [`BLOCK`], or reads the byte that
    /// [`Blocker::prepare`] asked for (blocking until the writer sends it).
    pub fn block(&self) {
        let Some(p) = &self.pipe else {
            std::thread::sleep(BLOCK);
            return;
        };
        let mut b = [0u8; 1];
        loop {
            // SAFETY: `read_fd` is open for the life of the process; `b` is
            // one writable byte.
            let n = unsafe { libc::read(p.read_fd, b.as_mut_ptr().cast(), 1) };
            if n == 1 {
                return;
            }
            let e = std::io::Error::last_os_error();
            assert!(
                n < 0 && e.kind() == std::io::ErrorKind::Interrupted,
                "pipe read: {n} {e}"
            );
        }
    }
}

/// The `result` line of a `blocking*` repetition: `delays` are how long
/// after A's send B ran, one per round.
pub fn report_blocking(w: Workload, imp: &str, rep: usize, delays: &[Duration]) -> Line {
    let mut ns: Vec<u128> = delays.iter().map(Duration::as_nanos).collect();
    let all = ns.iter().map(u128::to_string).collect::<Vec<_>>().join(",");
    ns.sort_unstable();
    Line::new(w, imp, delays.len(), rep)
        .kv("ns_per_op", median_ns(&ns))
        .kv("min_ns", ns[0])
        .kv("max_ns", ns[ns.len() - 1])
        .kv("block_ms", BLOCK.as_millis())
        .kv("delays_ns", all)
}

/// The median of sorted, non-empty `ns` (the mean of the middle two for an
/// even count).
fn median_ns(ns: &[u128]) -> u128 {
    let m = ns.len() / 2;
    if ns.len() % 2 == 1 {
        ns[m]
    } else {
        (ns[m - 1] + ns[m]) / 2
    }
}
