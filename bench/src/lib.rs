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
//!
//! - `tcp_echo N`: a loopback echo server (one unit per accepted
//!   connection) and `N` client units, each connecting and then doing
//!   [`ECHO_REQUESTS`] exchanges: write [`ECHO_BYTES`] bytes, read them
//!   back (`TCP_NODELAY` on both ends); prints ns per request (elapsed from
//!   the first client spawn to the last client done, connects included,
//!   over `N * ECHO_REQUESTS`) and requests per second.
//!
//! `yield`, `spawn_join` and `tcp_echo` run one warm-up ([`warmup_n`]) and then `reps`
//! measured repetitions in the process; `parked` runs once (the driver starts more
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
use std::time::Duration;

/// The three workloads (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// G→G switch through a yield, two units on one worker.
    Yield,
    /// A burst of spawns, then joins.
    SpawnJoin,
    /// Many units blocked on one gate.
    Parked,
    /// Loopback TCP echo: `N` connections, [`ECHO_REQUESTS`] request/response
    /// exchanges of [`ECHO_BYTES`] bytes each.
    TcpEcho,
}

impl Workload {
    /// The name used on the command line and in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Yield => "yield",
            Workload::SpawnJoin => "spawn_join",
            Workload::Parked => "parked",
            Workload::TcpEcho => "tcp_echo",
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
        eprintln!("{imp}_bench: {why}\nusage: {imp}_bench <yield|spawn_join|parked|tcp_echo> <size> [reps]");
        std::process::exit(2);
    };
    if argv.len() < 3 || argv.len() > 4 {
        usage("wrong number of arguments");
    }
    let workload = match argv[1].as_str() {
        "yield" => Workload::Yield,
        "spawn_join" => Workload::SpawnJoin,
        "parked" => Workload::Parked,
        "tcp_echo" => Workload::TcpEcho,
        w => usage(&format!("unknown workload {w:?}")),
    };
    let n = parse_count(&argv[2]).unwrap_or_else(|| usage(&format!("bad size {:?}", argv[2])));
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
        Line(format!("result workload={} impl={imp} n={n} rep={rep}", w.name()))
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
        .kv("rss_kib_per_unit", format!("{:.3}", delta as f64 / n as f64))
}

/// `tcp_echo`: request/response exchanges per connection.
pub const ECHO_REQUESTS: usize = 100;
/// `tcp_echo`: bytes per request (the response echoes them).
pub const ECHO_BYTES: usize = 64;

/// The `result` line of a `tcp_echo` repetition with `conns` connections.
pub fn report_tcp_echo(imp: &str, conns: usize, rep: usize, d: Duration) -> Line {
    let requests = conns * ECHO_REQUESTS;
    Line::new(Workload::TcpEcho, imp, conns, rep)
        .f("ns_per_op", ns_per(d, requests))
        .f("rps", requests as f64 / d.as_secs_f64())
}
