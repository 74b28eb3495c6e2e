//! Plain blocking code in a G: a G that blocks its thread in the kernel or
//! on a std lock, with no runtime wrapper, loses its P within tens of
//! microseconds, and nothing that blocks hangs the runtime. Each test runs
//! a scenario of `tests/src/bin/scenarios/blocking_scenarios.rs` in a child
//! process with a hard time limit (SIGQUIT, then SIGKILL, past it).
//!
//! Under qemu-user every scenario runs: qemu maps each guest thread to a
//! host thread, so the kernel states sysmon reads in `/proc` are the real
//! ones. Only figures that emulation distorts are relaxed there, each at its
//! assertion, with the reason.

use std::time::Duration;
use tests::{Outcome, run_signalled, scaled, scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

/// Runs a scenario with a hard limit of `secs` (×4 under qemu-user).
fn run(name: &str, env: &[(&str, &str)], secs: u64) -> Outcome {
    let limit = Duration::from_secs(if under_qemu() { secs * 4 } else { secs });
    scenario(BIN, name, env, limit)
}

/// Runs a scenario that must complete, and checks it printed no fatal
/// error or warning it should not have.
fn run_ok(name: &str, env: &[(&str, &str)], secs: u64) -> Outcome {
    let o = run(name, env, secs);
    o.assert_success();
    assert!(!o.stderr.contains("fatal error"), "{o}");
    o
}

/// `Ok` when the machine is quiet enough for timing checks (one-minute
/// load average below the CPU count), else why not.
fn quiet_machine() -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    match load {
        Some(l) if l < cpus as f64 => Ok(()),
        _ => Err(format!("load average {load:?} on {cpus} CPUs")),
    }
}

/// The stall bound: a G wakes another, then calls `std::thread::sleep`
/// (200 ms) with `GORT_MAXPROCS=1`, nine times. The woken G must run within
/// 2 ms: sysmon retakes a kernel-blocked M's P in tens of microseconds,
/// where a whole slice (the old behaviour) is 10 ms or more. The real figure
/// is the `blocking` benchmark's.
///
/// On a machine with more runnable threads than CPUs, the M that takes the
/// P waits for a CPU for milliseconds whatever the runtime does (load 18-28
/// on 2 CPUs: medians of 4-8 ms, a third above 4 ms at times, best samples
/// ~120 us). So the best wake-up must always be within the bound, which a
/// slice-based retake (10 ms at least) can never meet, and the median too
/// when the load average is below the CPU count.
#[test]
fn a_woken_g_runs_while_its_waker_sleeps_in_the_kernel() {
    let o = run_ok("blocking_stall_bound", &[("GORT_MAXPROCS", "1")], 30);
    let mut us: Vec<u64> = o
        .value("delays_us")
        .unwrap_or_else(|| panic!("no delays_us=\n{o}"))
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    us.sort_unstable();
    assert_eq!(us.len(), 9, "{o}");
    // qemu-user runs sysmon's loop and the hand-off 10-50x slower; 8 ms is
    // still below a single 10 ms slice, so the old behaviour fails there
    // too.
    let bound = if under_qemu() { 8_000 } else { 2_000 };
    assert!(
        us[0] < bound,
        "the woken G waited {} us or more in every run behind a plain sleep\n{o}",
        us[0]
    );
    match quiet_machine() {
        Ok(()) => assert!(
            us[4] < bound,
            "woken G waited {} us (median) behind a plain sleep\n{o}",
            us[4]
        ),
        Err(why) => eprintln!("median {} us not checked: {why}", us[4]),
    }
}

/// The smallest hang: two foreign threads whose callbacks wait on one
/// `Barrier::new(2)`, with one P. The first callback blocks in the barrier
/// holding the P; the second needs it.
#[test]
fn two_callbacks_on_one_barrier_with_one_p_get_through() {
    let o = run_ok(
        "blocking_callback_barrier",
        &[("GORT_MAXPROCS", "1"), ("THREADS", "2")],
        20,
    );
    assert_eq!(o.value("status"), Some("0"), "{o}");
    assert_eq!(o.value("through"), Some("2"), "{o}");
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
}

/// 100 foreign threads whose callbacks wait on one `Barrier::new(100)`,
/// default Ps: the measured hang of the issue.
#[test]
fn a_hundred_callbacks_on_one_barrier_get_through() {
    let o = run_ok("blocking_callback_barrier", &[("THREADS", "100")], 30);
    assert_eq!(o.value("status"), Some("0"), "{o}");
    assert_eq!(o.value("through"), Some("100"), "{o}");
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
}

/// The same with 1,000 foreign threads (256 KiB stacks each, so that
/// they fit in i686's address space too).
#[test]
fn a_thousand_callbacks_on_one_barrier_get_through() {
    let o = run_ok("blocking_callback_barrier", &[("THREADS", "1000")], 60);
    assert_eq!(o.value("status"), Some("0"), "{o}");
    assert_eq!(o.value("through"), Some("1000"), "{o}");
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
}

/// A producer and a consumer G on a `std::sync::mpsc` rendezvous
/// channel, one P: all 2,000 items arrive (count and sum).
#[test]
fn std_mpsc_producer_and_consumer_on_one_p() {
    let o = run_ok("blocking_std_mpsc", &[("GORT_MAXPROCS", "1")], 30);
    assert_eq!(o.value("count"), Some("2000"), "{o}");
    assert_eq!(o.value("sum"), o.value("expected_sum"), "{o}");
}

/// Two Gs taking turns through a `std::sync::Mutex` + `Condvar`, one
/// P: 2,000 hand-offs.
#[test]
fn std_mutex_and_condvar_hand_off_on_one_p() {
    let o = run_ok("blocking_std_condvar", &[("GORT_MAXPROCS", "1")], 30);
    assert_eq!(o.value("handoffs"), Some("2000"), "{o}");
    assert_eq!(o.value("expected"), Some("2000"), "{o}");
}

/// A `std::sync::Barrier` across 50 Gs, three rounds, one P: each
/// round has exactly one leader and every G passes every round.
#[test]
fn std_barrier_across_fifty_gs_on_one_p() {
    let o = run_ok("blocking_std_barrier", &[("GORT_MAXPROCS", "1")], 30);
    assert_eq!(o.value("passed"), Some("150"), "{o}");
    assert_eq!(o.value("expected_passed"), Some("150"), "{o}");
    assert_eq!(o.value("leaders"), Some("3"), "{o}");
}

/// The thread limit: 16 Gs in a plain 300 ms sleep with
/// `GORT_MAX_THREADS=6`. Handing every blocked M's P on would need more
/// threads than allowed: the program stalls instead of aborting, finishes
/// once the sleeps end, warns once naming the limit, never exceeds it, and
/// counts the stalls.
#[test]
fn the_thread_limit_stalls_instead_of_aborting() {
    let o = run_ok(
        "blocking_thread_limit_stall",
        &[
            ("GORT_MAX_THREADS", "6"),
            ("GORT_MAXPROCS", "2"),
            ("GS", "16"),
        ],
        30,
    );
    assert_eq!(o.value("slept"), Some("16"), "{o}");
    assert_eq!(o.value("after"), Some("42"), "{o}");
    let max: usize = o.parse("max_threads");
    assert!(max <= 6, "{max} threads with GORT_MAX_THREADS=6\n{o}");
    let stalls: u64 = o.parse("stalls");
    assert!(stalls >= 1, "stalls not counted\n{o}");
    let warnings = o
        .stderr
        .lines()
        .filter(|l| l.contains("GORT_MAX_THREADS"))
        .count();
    assert_eq!(warnings, 1, "one warning naming the limit expected\n{o}");
}

/// `n` ms scaled for qemu-user, in ms.
fn ms(n: u64) -> u64 {
    scaled(Duration::from_millis(n)).as_millis() as u64
}

/// The retake counters of a `blocking_retake_cause` run, after minus
/// before: (kernel, slice, syscall).
fn retake_deltas(cause: &str) -> ((u64, u64, u64), Outcome) {
    let o = run_ok(
        "blocking_retake_cause",
        &[("GORT_MAXPROCS", "1"), ("CAUSE", cause)],
        20,
    );
    let d =
        |k: &str| o.parse::<u64>(&format!("after_{k}")) - o.parse::<u64>(&format!("before_{k}"));
    (
        (
            d("retakes_kernel"),
            d("retakes_slice"),
            d("retakes_syscall"),
        ),
        o,
    )
}

/// A plain `std::thread::sleep` with another G waiting: one kernel
/// retake, and it is not counted as a slice or a `runtime::syscall`. The
/// waiting G runs before the 100 ms sleep ends.
#[test]
fn a_plain_kernel_block_counts_as_a_kernel_retake() {
    let ((kernel, slice, syscall), o) = retake_deltas("kernel");
    assert!(kernel >= 1, "no kernel retake counted\n{o}");
    assert_eq!((slice, syscall), (0, 0), "counted under another cause\n{o}");
    // Retaken in microseconds, but on an overloaded machine the M that takes
    // the P may wait tens of ms for a CPU: "before the sleep ended" is sure.
    assert!(o.parse::<u64>("other_ran_after_ms") < ms(90), "{o}");
}

/// User code spinning 100 ms (2 s under qemu-user) with another G waiting: slice retakes
/// only (the spinning thread is never asleep in the kernel).
#[test]
fn a_long_loop_counts_as_a_slice_retake() {
    let ((kernel, slice, syscall), o) = retake_deltas("slice");
    assert!(slice >= 1, "no slice retake counted\n{o}");
    assert_eq!(
        (kernel, syscall),
        (0, 0),
        "counted under another cause\n{o}"
    );
    // A slice is ~10 ms, but the spinning thread and the M that takes the
    // P share two CPUs with the rest of the machine: only "before the
    // 100 ms spin ended" is certain.
    assert!(o.parse::<u64>("other_ran_after_ms") < ms(90), "{o}");
}

/// A sleep inside `runtime::syscall` with another G waiting: syscall
/// retakes only, even though the thread is asleep in the kernel too.
#[test]
fn a_wrapped_syscall_counts_as_a_syscall_retake() {
    let ((kernel, slice, syscall), o) = retake_deltas("syscall");
    assert!(syscall >= 1, "no syscall retake counted\n{o}");
    assert_eq!((kernel, slice), (0, 0), "counted under another cause\n{o}");
    assert!(o.parse::<u64>("other_ran_after_ms") < ms(90), "{o}");
}

/// The dump lines of the G `goid`: its header and everything up to the
/// next blank line, in every section where it appears, with the M of the
/// section (`PC=0x… m=N`) it appeared in.
fn g_sections(o: &Outcome, goid: u64) -> Vec<(Option<usize>, String)> {
    let header = format!("goroutine {goid} [");
    let mut out = Vec::new();
    let mut m = None;
    let mut cur: Option<String> = None;
    for l in o.stderr.lines() {
        if l.starts_with("PC=0x") {
            m = l
                .split(" m=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok());
        }
        if let Some(c) = cur.as_mut() {
            if l.is_empty() || l.starts_with("goroutine ") {
                out.push((m, cur.take().unwrap()));
            } else {
                c.push_str(l);
                c.push('\n');
                continue;
            }
        }
        if l.starts_with(&header) {
            cur = Some(format!("{l}\n"));
        }
    }
    if let Some(c) = cur {
        out.push((m, c));
    }
    out
}

/// Asserts that the dump's `header` of the reader `goid` says `syscall`.
///
/// Under qemu-user, when the SIGQUIT landed on the reader's own thread,
/// the emulator runs on that thread for milliseconds between the
/// interrupted read(2) and the guest's handler, so by the time the handler
/// prints, the thread no longer looks asleep in the kernel: `running` is
/// then accepted (and said), the stack from its own M still required.
fn assert_syscall_header(o: &Outcome, goid: u64, header: &str) {
    let landed_on_reader = o.stderr.lines().next().is_some_and(|l| {
        l.starts_with("fatal signal SIGQUIT") && l.ends_with(&format!(" goroutine={goid}"))
    });
    if under_qemu() && landed_on_reader && header.starts_with(&format!("goroutine {goid} [running"))
    {
        eprintln!("qemu-user: signal landed on the reader's thread, header {header:?} accepted");
        return;
    }
    assert!(
        header.starts_with(&format!("goroutine {goid} [syscall")),
        "not shown as a syscall: {header}\n{o}"
    );
}

/// SIGQUIT with `GORT_TRACEBACK=all`: a G blocked in a plain `read` on
/// a pipe (asleep there before a ticker wants its P, so sysmon takes the P
/// from a kernel-blocked thread) is listed once, as `[syscall…]` with
/// its name, not as running, whichever thread the signal landed on (often
/// the reader's own).
#[test]
fn a_g_blocked_in_read_shows_as_syscall_in_a_dump() {
    let o = run_signalled(
        BIN,
        &["crash_blocked_read"],
        &[("GORT_MAXPROCS", "1"), ("GORT_TRACEBACK", "all")],
        Some(libc::SIGQUIT),
        tests::crash_limit(),
    );
    assert_eq!(o.code, Some(2), "{o}");
    assert_eq!(
        o.value("reader_asleep"),
        Some("true"),
        "never reached read\n{o}"
    );
    assert!(
        o.parse::<u64>("ticks") >= 20,
        "the P was never retaken\n{o}"
    );
    assert!(o.parse::<u64>("retakes_kernel") >= 1, "{o}");
    let goid: u64 = o.parse("reader_goid");
    let sections = g_sections(&o, goid);
    assert_eq!(sections.len(), 1, "the reader must be listed once\n{o}");
    let header = sections[0].1.lines().next().unwrap();
    assert_syscall_header(&o, goid, header);
    // The name: in the header (`name=…`) or on the line before it, Go's
    // `[goroutine N name: …]`.
    let named_before = o
        .stderr
        .lines()
        .any(|l| l == format!("[goroutine {goid} name: pipe_reader]"));
    assert!(
        header.contains("name=pipe_reader") || named_before,
        "the G's name is missing: {header}\n{o}"
    );
}

/// The same with `GORT_TRACEBACK=crash`: the reader's own M dumps it,
/// with its stack down to the read (`read_pipe_blocking`), and its header
/// still says `syscall`.
#[test]
fn a_g_blocked_in_read_is_dumped_by_its_own_m_in_crash_mode() {
    let o = run_signalled(
        BIN,
        &["crash_blocked_read"],
        &[("GORT_MAXPROCS", "1"), ("GORT_TRACEBACK", "crash")],
        Some(libc::SIGQUIT),
        tests::crash_limit(),
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "crash mode must abort\n{o}");
    assert_eq!(
        o.value("reader_asleep"),
        Some("true"),
        "never reached read\n{o}"
    );
    let goid: u64 = o.parse("reader_goid");
    let reader_m: usize = o.parse("reader_m");
    let sections = g_sections(&o, goid);
    let own = sections
        .iter()
        .find(|(m, text)| *m == Some(reader_m) && text.contains("read_pipe_blocking"))
        .unwrap_or_else(|| panic!("m={reader_m} did not dump the reader's stack\n{o}"));
    assert_syscall_header(&o, goid, own.1.lines().next().unwrap_or(""));
    assert!(!o.stderr.contains("did not answer"), "{o}");
}

/// The lines of stderr that mention `needle`.
fn lines_with<'a>(o: &'a Outcome, needle: &str) -> Vec<&'a str> {
    o.stderr.lines().filter(|l| l.contains(needle)).collect()
}

/// The largest duration written in `line` as a number followed by `ms` or
/// `s` (after at most one space), in milliseconds (`52ms`, `52.0 ms`,
/// `0.052s`).
fn duration_ms(line: &str) -> Option<f64> {
    let b = line.as_bytes();
    let mut best = None;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let n: Option<f64> = line[start..i].parse().ok();
            let rest = line[i..].strip_prefix(' ').unwrap_or(&line[i..]);
            let unit = if rest.starts_with("ms") {
                Some(1.0)
            } else if rest.starts_with("s") && !rest[1..].starts_with(|c: char| c.is_alphabetic()) {
                Some(1000.0)
            } else {
                None
            };
            if let (Some(n), Some(u)) = (n, unit) {
                let v = n * u;
                best = Some(best.map_or(v, |b: f64| b.max(v)));
            }
        } else {
            i += 1;
        }
    }
    best
}

/// `GORT_BLOCKING_LOG=5ms`: a G that blocks its thread 50 ms is logged
/// once per block: by id and name, where it blocked (the blocking function
/// or its source file), and for how long (at least 40 ms). The runtime may
/// write a first line when the block passes the threshold (for a G blocked
/// for good) and the length on a second when it ends; then the length is
/// on the last line. A G whose blocks are 100 us long gets none (checked
/// when the machine is not overloaded).
#[test]
fn the_blocking_log_names_the_g_the_duration_and_where() {
    let o = run_ok("blocking_log", &[("GORT_BLOCKING_LOG", "5ms")], 20);
    let goid: u64 = o.parse("slow_goid");
    let lines = lines_with(&o, "slowpoke");
    assert!(
        (1..=2).contains(&lines.len()),
        "one block, logged in one line (or a start and an end line)\n{o}"
    );
    for line in &lines {
        assert!(
            line.contains(&format!("goroutine {goid} ")),
            "the G's id is missing: {line}\n{o}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("block_thread_50ms") || l.contains("blocking_scenarios.rs")),
        "the log does not say where\n{o}"
    );
    let last = lines[lines.len() - 1];
    let ms = duration_ms(last).unwrap_or_else(|| panic!("no duration in: {last}\n{o}"));
    assert!(
        (40.0..5000.0).contains(&ms),
        "a 50 ms block reported as {ms} ms: {last}"
    );
    // On an overloaded machine a 100 us sleep can end in a wait for a CPU
    // of more than 5 ms, which the log rightly reports.
    let quick = lines_with(&o, "quickstep");
    match quiet_machine() {
        Ok(()) => assert!(
            quick.is_empty(),
            "100 us blocks logged under a 5 ms threshold\n{o}"
        ),
        Err(why) => eprintln!("{quick:?} not checked: {why}"),
    }
}

/// Without `GORT_BLOCKING_LOG`, the same program prints nothing on
/// stderr.
#[test]
fn without_the_setting_nothing_is_logged() {
    let o = run_ok("blocking_log", &[], 20);
    assert!(o.stdout.lines().any(|l| l == "done"), "{o}");
    assert_eq!(o.stderr, "", "stderr must stay empty\n{o}");
}

/// An invalid `GORT_BLOCKING_LOG` is reported naming the variable and
/// the value; the program runs on without the log.
#[test]
fn an_invalid_blocking_log_value_is_reported() {
    for bad in ["banana", "5 parsecs", "-5ms"] {
        let o = run_ok("blocking_log", &[("GORT_BLOCKING_LOG", bad)], 20);
        let reports = lines_with(&o, "GORT_BLOCKING_LOG");
        assert_eq!(reports.len(), 1, "{bad}: one report expected\n{o}");
        assert!(reports[0].contains(bad), "{bad}: value not named\n{o}");
        assert!(lines_with(&o, "slowpoke").is_empty(), "{bad}\n{o}");
        assert!(o.stdout.lines().any(|l| l == "done"), "{o}");
    }
}

/// The race of a kernel-blocked call returning just as sysmon retakes
/// its P: six Gs sleep 10-60 us in the kernel 2,000 times each (about the
/// retake delay) while four others keep the only P in demand. The checksum
/// proves every step ran exactly once; some retakes really happened.
#[test]
fn a_call_returning_as_its_p_is_retaken_loses_nothing() {
    // Under qemu-user a quarter of the rounds: each emulated sleep costs
    // far more, the interleavings are the same.
    let rounds = if under_qemu() { "500" } else { "2000" };
    let o = run_ok(
        "blocking_retake_race",
        &[("GORT_MAXPROCS", "1"), ("ROUNDS", rounds)],
        60,
    );
    assert_eq!(o.value("sum"), o.value("expected"), "{o}");
    let kernel: u64 = o.parse("retakes_kernel");
    assert!(
        kernel >= 1,
        "no kernel retake: the race was not exercised\n{o}"
    );
}

/// `GORT_MAXPROCS=1` still means one G running at once: three CPU-bound
/// Gs that lost the P to sysmon (slice retakes) and run on without it do
/// not slow the G that holds the P, with the whole process pinned to one
/// CPU. Competing as equals, they would take 3/4 of the CPU from it and
/// make its work take ~4x as long.
///
/// The assertion is on the P-holder's share of the CPU time it and the
/// hogs got while it worked (> 1/2), which other processes on a loaded
/// machine do not change; the slowdown against the same work done alone
/// (< 2x on a quiet machine) is checked only when the load average is
/// below the CPU count, since the two timings are taken at different
/// moments.
#[test]
fn gs_running_without_a_p_do_not_slow_the_g_that_holds_it() {
    let o = run_ok("blocking_procs_bound_cpu", &[("GORT_MAXPROCS", "1")], 30);
    assert!(
        o.parse::<u64>("retakes_slice") >= 1,
        "sysmon never took the P from a hog\n{o}"
    );
    assert!(
        o.parse::<u64>("hogs_ran_ms") >= 1,
        "hogs' run time unread\n{o}"
    );
    let share: f64 = o.parse("share");
    assert!(
        share > 0.5,
        "the P-holding G got {share} of the CPU beside P-less hogs\n{o}"
    );
    let ratio: f64 = o.parse("ratio");
    match quiet_machine() {
        Ok(()) => assert!(
            ratio < 2.0,
            "the P-holding G ran {ratio}x slower beside P-less hogs\n{o}"
        ),
        Err(why) => eprintln!("slowdown {ratio} not checked: {why}"),
    }
}

/// 50 Gs looping on plain `std::thread::sleep` do not stall a ticker G
/// (5 ms ticks) for more than 100 ms (255 ms measured before).
#[test]
fn many_sleeping_blockers_do_not_stall_a_ticker() {
    let o = run_ok("blocking_procs_bound_ticker", &[("GORT_MAXPROCS", "1")], 30);
    assert_eq!(o.value("ticks"), Some("200"), "{o}");
    let max: f64 = o.parse("max_gap_ms");
    let bound = scaled(Duration::from_millis(100)).as_secs_f64() * 1e3;
    assert!(
        max < bound,
        "the ticker stalled {max} ms behind 50 blockers\n{o}"
    );
}
