//! Support for gort's integration tests: run a named scenario of the
//! `scenarios` program in a child process with a hard time limit.

// The C fixtures this library bundles call gort's C ABI: link it.
extern crate gort as _;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a child process ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Terminating signal, if killed by one.
    pub signal: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Wall time until it ended.
    pub elapsed: Duration,
    /// `CLOCK_MONOTONIC` (ns) when the harness saw it end (within its 5 ms
    /// poll), to compare with a time the child printed.
    pub ended_mono_ns: u64,
}

impl Outcome {
    /// The value of the first `key=value` line on stdout.
    pub fn value(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    /// [`Outcome::value`] parsed, with a readable failure.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> T {
        let v = self
            .value(key)
            .unwrap_or_else(|| panic!("no {key}= in output:\n{self}"));
        v.parse()
            .unwrap_or_else(|_| panic!("bad {key}={v}:\n{self}"))
    }

    /// Time from the `CLOCK_MONOTONIC` instant the child printed as `key=`
    /// to the moment the harness saw it end.
    pub fn since(&self, key: &str) -> Duration {
        let at: u64 = self.parse(key);
        Duration::from_nanos(self.ended_mono_ns.saturating_sub(at))
    }

    /// The M id of each section of a dump (the `PC=0x… m=N` line that opens
    /// the crasher's section and every relayed one), in order. `None` for a
    /// section printed by a thread without an M (`m=none`).
    pub fn section_ms(&self) -> Vec<Option<usize>> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("PC=0x"))
            .map(|l| {
                let m = l.split(" m=").nth(1).unwrap_or("none");
                m.split_whitespace().next().and_then(|v| v.parse().ok())
            })
            .collect()
    }

    /// Panics with the whole output unless the process exited with 0.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "scenario failed:\n{self}");
        self
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "code={:?} signal={:?} elapsed={:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.signal, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `program args` with `env` added, killing it after `limit`.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Outcome {
    run_signalled(program, args, env, None, limit)
}

/// Like [`run`], and once the child prints a line `ready` on stdout, sends
/// it `signal` (the way a CI harness sends SIGQUIT on a timeout).
pub fn run_signalled(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    signal: Option<i32>,
    limit: Duration,
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    // Under qemu-user (ci/cross.sh) a child binary of the foreign
    // architecture must be started through the runner too.
    let runner: Vec<String> = std::env::var("GORT_QEMU_RUNNER")
        .map(|r| r.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut cmd = match runner.split_first() {
        Some((qemu, rest)) => {
            let mut c = Command::new(qemu);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    };
    // A group of its own: on a timeout its children (a scenario that
    // forks) are killed too, and cannot keep our pipes open for ever.
    use std::os::unix::process::CommandExt;
    cmd.args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Scenarios choose their own configuration.
    for var in [
        "GORT_MAXPROCS",
        "GORT_STACK_SIZE",
        "GORT_MAX_THREADS",
        "GORT_TRACEBACK",
        "GORT_BLOCKING_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let pid = child.id() as i32;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let mut buf = [0u8; 4096];
        let mut sent = signal.is_none();
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if !sent && s.lines().any(|l| l == "ready") {
                sent = true;
                // SAFETY: kill(2) to our own child.
                unsafe { libc::kill(pid, signal.unwrap_or(0)) };
            }
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            break st;
        }
        if start.elapsed() > limit {
            // SIGQUIT first: gort dumps every G and M to stderr and exits,
            // so the failure shows where the child hung. SIGKILL if it
            // does not end within 10 s.
            // SAFETY: kill(2) to our own child.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let quit_at = Instant::now();
            while child.try_wait().expect("wait for child").is_none()
                && quit_at.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().ok();
            // SAFETY: kill(2) to the process group of our own child.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let st = child.wait().expect("wait for killed child");
            let o = Outcome {
                code: st.code(),
                signal: st.signal(),
                ended_mono_ns: mono_ns(),
                stdout: t_out.join().unwrap(),
                stderr: t_err.join().unwrap(),
                elapsed: start.elapsed(),
            };
            panic!(
                "{program} {args:?} exceeded its {limit:?} limit (sent SIGQUIT for a dump, then SIGKILL):\n{o}"
            );
        }
        // A 5 ms poll: crash latencies are asserted in hundreds of ms.
        std::thread::sleep(Duration::from_millis(5));
    };
    let ended_mono_ns = mono_ns();
    Outcome {
        code: status.code(),
        signal: status.signal(),
        ended_mono_ns,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

/// Runs scenario `name` of the `scenarios` program, whose path the calling
/// integration test passes as `env!("CARGO_BIN_EXE_scenarios")`.
pub fn scenario(bin: &str, name: &str, env: &[(&str, &str)], limit: Duration) -> Outcome {
    run(bin, &[name], env, limit)
}

/// `CLOCK_MONOTONIC` now, in ns: one clock for every process of the
/// machine (and passed through by qemu-user).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `d` scaled for the machine: ×20 under qemu-user, which runs the child
/// 10–50× slower.
pub fn scaled(d: Duration) -> Duration {
    if under_qemu() { d * 20 } else { d }
}

/// The hard time limit of a crash scenario's child process: 20 s natively,
/// 120 s under qemu-user.
pub fn crash_limit() -> Duration {
    if under_qemu() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(20)
    }
}

/// Whether tests run under qemu-user (set by `ci/cross.sh`).
pub use testkit::under_qemu;

/// Asserts that Gs waiting behind a G blocked in a long C call ran within
/// 150 ms (the value `others_ms` of the scenario's output). Not checked
/// under qemu-user: emulated on a loaded 2-core machine, the 200 ms call
/// and sysmon's ticks stretch unpredictably; the hand-off is the same code
/// as natively, where the bound is checked.
pub fn assert_others_not_stalled(o: &Outcome) {
    let others: u64 = o.parse("others_ms");
    if under_qemu() {
        eprintln!("timing bound not checked under qemu-user: others_ms={others}");
        return;
    }
    assert!(
        others < 150,
        "other Gs waited for the C call ({others} ms)\n{o}"
    );
}

/// Raises this process's open-file soft limit (`RLIMIT_NOFILE`) to its hard
/// limit and returns the limit now in force. Socket tests size themselves by
/// it.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: raised is a valid rlimit; raising the soft limit up to the
        // hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits on i686
    let cur = lim.rlim_cur as u64;
    cur
}
