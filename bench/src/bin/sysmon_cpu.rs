//! How much CPU gort's monitor thread (`gort-sysmon`) uses while the Ps are
//! busy: the price of watching for Gs that block or run too long.
//!
//! ```text
//! sysmon_cpu <seconds> <spin|spin_queued|yield_queued>
//! ```
//!
//! `Builder::procs(2)`; for `<seconds>`, Gs run plain CPU-bound loops
//! (reading the clock, no runtime call):
//!
//! - `spin`: 2 Gs, one per P, nothing else runnable.
//! - `spin_queued`: 4 such Gs on the 2 Ps: two wait in the run queues
//!   until sysmon takes a P from a G that has run a whole slice.
//! - `yield_queued`: 4 Gs that call `runtime::yield_now` every ~50 µs of
//!   work: both Ps always busy, two Gs always queued, no G ever overstays
//!   its slice: what a busy server looks like to sysmon.
//!
//! At the end it reads the sysmon thread's `/proc/self/task/TID/schedstat`
//! (CPU time in ns, times scheduled) and `stat` (minor faults) and prints
//! one line:
//!
//! ```text
//! sysmon mode=spin secs=10 cpu_us=1234 cpu_per_s_us=123.4 wakeups=5678 ... last_start_us=12
//! ```
//!
//! `last_start_us`: how long after the start the last G first ran (in
//! `spin_queued`, a queued G waits for sysmon to move a P: ~a slice).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Spin,
    SpinQueued,
    YieldQueued,
}

fn usage(why: &str) -> ! {
    eprintln!("sysmon_cpu: {why}\nusage: sysmon_cpu <seconds> <spin|spin_queued|yield_queued>");
    std::process::exit(2);
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.len() != 3 {
        usage("wrong number of arguments");
    }
    let secs: f64 = argv[1]
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .unwrap_or_else(|| usage(&format!("bad seconds {:?} (0 < s <= 3600)", argv[1])));
    let mode = match argv[2].as_str() {
        "spin" => Mode::Spin,
        "spin_queued" => Mode::SpinQueued,
        "yield_queued" => Mode::YieldQueued,
        m => usage(&format!("unknown mode {m:?}")),
    };
    runtime::Builder::new()
        .procs(2)
        .build()
        .expect("sysmon_cpu: Builder::build");
    // sysmon starts with the first G, and names its thread itself once it
    // runs: look for up to a second.
    runtime::go(|| ()).join().expect("sysmon_cpu: first G");
    let sysmon = (0..1000)
        .find_map(|_| {
            sysmon_tid().or_else(|| {
                std::thread::sleep(Duration::from_millis(1));
                None
            })
        })
        .unwrap_or_else(|| {
            eprintln!("sysmon_cpu: no thread named gort-sysmon in /proc/self/task after 1 s");
            std::process::exit(1);
        });
    let before = thread_cpu(sysmon);
    let units = if mode == Mode::Spin { 2 } else { 4 };
    let run = Duration::from_secs_f64(secs);
    let work = Arc::new(AtomicU64::new(0));
    // The longest any G waited for its first run (µs): a queued G that
    // sysmon never moves to a P waits the whole run.
    let last_start_us = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let gs: Vec<_> = (0..units)
        .map(|_| {
            let (work, last_start_us) = (work.clone(), last_start_us.clone());
            runtime::go(move || {
                last_start_us.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                busy(mode, t + run, &work)
            })
        })
        .collect();
    for g in gs {
        g.join().expect("sysmon_cpu: a busy G panicked");
    }
    let wall = t.elapsed();
    let after = thread_cpu(sysmon);
    let cpu_ns = after.run_ns - before.run_ns;
    let st = runtime::stats();
    println!(
        "sysmon mode={} secs={:.1} units={units} procs={} cpu_us={} cpu_per_s_us={:.1} \
         share_of_one_cpu={:.4}% wakeups={} minflt={} mcount={} work={} last_start_us={}",
        argv[2],
        wall.as_secs_f64(),
        st.procs,
        cpu_ns / 1000,
        cpu_ns as f64 / 1e3 / wall.as_secs_f64(),
        cpu_ns as f64 / wall.as_nanos() as f64 * 100.0,
        after.scheduled - before.scheduled,
        after.minflt - before.minflt,
        st.mcount,
        work.load(Ordering::Relaxed),
        last_start_us.load(Ordering::Relaxed),
    );
}

/// One busy G: plain loops until `until`; in `yield_queued`, a
/// `yield_now` after every ~50 µs of them.
fn busy(mode: Mode, until: Instant, work: &AtomicU64) {
    let mut n = 0u64;
    loop {
        let chunk = Instant::now() + Duration::from_micros(50);
        let mut now = Instant::now();
        while now < chunk {
            n += 1;
            now = Instant::now();
        }
        if now >= until {
            break;
        }
        if mode == Mode::YieldQueued {
            runtime::yield_now();
        }
    }
    work.fetch_add(n, Ordering::Relaxed);
}

/// The tid of the thread named `gort-sysmon`.
fn sysmon_tid() -> Option<u32> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|e| {
        let e = e.ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "gort-sysmon")
            .then(|| e.file_name().to_str()?.parse().ok())
            .flatten()
    })
}

/// What the kernel accounts to one thread.
#[derive(Clone, Copy, Debug)]
struct ThreadCpu {
    /// schedstat field 1: time on a CPU, ns.
    run_ns: u64,
    /// schedstat field 3: times it was given a CPU (its wake-ups, roughly).
    scheduled: u64,
    /// stat field 10: minor page faults.
    minflt: u64,
}

fn thread_cpu(tid: u32) -> ThreadCpu {
    let dir = format!("/proc/self/task/{tid}");
    let sched = std::fs::read_to_string(format!("{dir}/schedstat"))
        .unwrap_or_else(|e| panic!("sysmon_cpu: read {dir}/schedstat: {e}"));
    let f: Vec<u64> = sched
        .split_whitespace()
        .map(|x| x.parse().expect("sysmon_cpu: schedstat field"))
        .collect();
    let stat = std::fs::read_to_string(format!("{dir}/stat"))
        .unwrap_or_else(|e| panic!("sysmon_cpu: read {dir}/stat: {e}"));
    // Fields after the command name, which ends at the last ')'.
    let rest: Vec<&str> = stat[stat.rfind(')').expect("stat: comm") + 2..]
        .split_whitespace()
        .collect();
    ThreadCpu {
        run_ns: f[0],
        scheduled: f[2],
        minflt: rest[7].parse().expect("sysmon_cpu: stat minflt"),
    }
}
