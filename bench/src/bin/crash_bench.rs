//! Crash latency: the time from a fatal signal to the end of the process
//! in crash mode (`GORT_TRACEBACK=crash`, Go's `GOTRACEBACK=crash`), with
//! the dump written to a file. Two roles in one binary:
//!
//! - `crash_bench child <busy> <extra> <parked>`: the gort workload. It
//!   runs `<busy>` spinning Gs (one per P with `GORT_MAXPROCS=<busy>`),
//!   `<parked>` parked Gs, and `<extra>` foreign threads that called in and
//!   exited (their Ms wait in the extra-M pool, with no thread: the seed
//!   bug's set-up). Then one G writes `crash_at_ns=<CLOCK_MONOTONIC>` to
//!   stdout and sends SIGSEGV to the process (`kill`), as the Go peer does
//!   (Go turns a hardware fault in Go code into a panic and a `tgkill`'d
//!   one into a throw; only a user-sent signal takes both runtimes through
//!   their signal handler's crash path with the relay).
//! - `crash_bench measure <runs> <label> <stderr file> -- <cmd...>`: the
//!   parent. It starts `cmd` (fork + exec) with stdout piped and stderr to
//!   the file, reads the `crash_at_ns=` line, and waits (`waitpid`) for the
//!   child to end; latency = the clock at `waitpid`'s return minus the
//!   child's recorded time. It prints one `result` line per run and the
//!   median. The Go peer (`bench/go-crash`) speaks the same child protocol,
//!   so one parent measures both in the same run.
//!
//! Rejected: timing inside the child (it cannot see its own exit), and
//! a parent that sends the signal (that would add the signal delivery and
//! the scheduling of the receiving thread to a figure about the handler).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn usage(why: &str) -> ! {
    eprintln!(
        "crash_bench: {why}\nusage: crash_bench child <busy> <extra> <parked>\n       crash_bench measure <runs> <label> <stderr file> -- <cmd...>"
    );
    std::process::exit(2);
}

fn num(s: Option<&String>, what: &str) -> usize {
    s.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage(&format!("bad or missing {what}")))
}

#[inline(never)]
fn busy(stop: &AtomicUsize) {
    while stop.load(Ordering::Relaxed) == 0 {
        std::hint::spin_loop();
    }
}

fn child(busy_n: usize, extra: usize, parked: usize) {
    // Foreign threads that call in once and exit: their Ms go back to the
    // pool (all at once, so each needs an M of its own).
    let barrier = Arc::new(std::sync::Barrier::new(extra.max(1)));
    let ts: Vec<_> = (0..extra)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                runtime::ffi::needm().expect("needm");
                b.wait();
                runtime::ffi::callback(|| ()).expect("callback");
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    for _ in 0..parked {
        runtime::go(|| runtime::sleep(Duration::from_secs(3600)));
    }
    // The crashing G is the last busy one: it spins too until told to go.
    let stop = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let fire = Arc::new(AtomicUsize::new(0));
    for _ in 0..busy_n.saturating_sub(1) {
        let (stop, started) = (stop.clone(), started.clone());
        runtime::go(move || {
            started.fetch_add(1, Ordering::SeqCst);
            busy(&stop);
        });
    }
    let (f2, s2) = (fire.clone(), started.clone());
    let crasher = runtime::go(move || {
        s2.fetch_add(1, Ordering::SeqCst);
        busy(&f2);
        let mut out = std::io::stdout().lock();
        writeln!(out, "crash_at_ns={}", now_ns()).ok();
        out.flush().ok();
        // SAFETY: kill(2) to our own process; the crash is the workload.
        unsafe { libc::kill(libc::getpid(), libc::SIGSEGV) };
        std::thread::sleep(Duration::from_secs(1));
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while (started.load(Ordering::SeqCst) < busy_n.max(1)
        || runtime::stats().waiting_gs < parked
        || !signals::symbols::is_ready())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = runtime::stats();
    eprintln!(
        "crash_bench child: mcount={} extra_m_count={} waiting_gs={}",
        s.mcount, s.extra_m_count, s.waiting_gs
    );
    fire.store(1, Ordering::SeqCst);
    crasher.join().ok();
    eprintln!("crash_bench child: the fault did not end the process");
    std::process::exit(3);
}

/// One run: returns the latency, or why it failed.
fn measure_once(cmd: &[String], err_path: &str) -> Result<Duration, String> {
    let err = std::fs::File::create(err_path).map_err(|e| format!("{err_path}: {e}"))?;
    let mut c = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cmd[0]))?;
    let mut at = None;
    for line in BufReader::new(c.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        if let Some(v) = line.strip_prefix("crash_at_ns=") {
            at = v.trim().parse::<u64>().ok();
            break;
        }
    }
    let st = c.wait().map_err(|e| e.to_string())?;
    let end = now_ns();
    let at = at.ok_or_else(|| format!("no crash_at_ns= line; {st}; see {err_path}"))?;
    use std::os::unix::process::ExitStatusExt;
    if st.signal() != Some(libc::SIGABRT) {
        return Err(format!(
            "expected death by SIGABRT, got {st}; see {err_path}"
        ));
    }
    Ok(Duration::from_nanos(end.saturating_sub(at)))
}

fn measure(runs: usize, label: &str, err_path: &str, cmd: &[String]) {
    let mut v = Vec::new();
    for rep in 0..runs {
        match measure_once(cmd, err_path) {
            Ok(d) => {
                let ms = d.as_secs_f64() * 1e3;
                println!("result workload=crash_latency impl={label} rep={rep} ms={ms:.2}");
                v.push(ms);
            }
            Err(e) => {
                println!("error workload=crash_latency impl={label} rep={rep} msg={e:?}");
            }
        }
    }
    if v.is_empty() {
        std::process::exit(1);
    }
    v.sort_by(f64::total_cmp);
    let dump = std::fs::metadata(err_path).map_or(0, |m| m.len());
    println!(
        "median workload=crash_latency impl={label} runs={} median_ms={:.2} min_ms={:.2} max_ms={:.2} dump_bytes={dump}",
        v.len(),
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("child") => child(
            num(a.get(2), "<busy>"),
            num(a.get(3), "<extra>"),
            num(a.get(4), "<parked>"),
        ),
        Some("measure") => {
            let runs = num(a.get(2), "<runs>");
            let (Some(label), Some(err), Some("--")) =
                (a.get(3), a.get(4), a.get(5).map(String::as_str))
            else {
                usage("measure needs <runs> <label> <stderr file> -- <cmd...>")
            };
            if a.len() < 7 {
                usage("no command to measure");
            }
            measure(runs, label, err, &a[6..]);
        }
        _ => usage("first argument must be child or measure"),
    }
}
