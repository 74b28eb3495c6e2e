//! The fault matrix: each way of misusing gort or running it out of a
//! resource, run in a child process with a hard time limit, asserting the
//! exact error, status code, signal or output. Misuse is an error and a
//! limit is a stall or an error: never a crash, a hang or undefined
//! behaviour. `docs/guide.md` ("Limits and misuse") lists what each
//! returns.
//!
//! Cases tested elsewhere, with the same pattern, are named at the end of
//! this file rather than run twice.

use tests::{Outcome, run, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn case(name: &str, env: &[(&str, &str)]) -> Outcome {
    run(BIN, &[name], env, tests::crash_limit())
}

/// Held by the cases that load the machine (thousands of threads, forks,
/// filling the address space) and by the one that times a crash: the test
/// harness runs cases in parallel, and on two cores a timed crash sharing
/// them with 20,000 thread starts measures the neighbour, not the dump.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn idle_foreign_threads_do_not_count_toward_max_threads() {
    let o = case(
        "fault_idle_foreign_threads",
        &[("GORT_MAX_THREADS", "8"), ("GORT_MAXPROCS", "2")],
    );
    o.assert_success();
    assert_eq!(o.value("extra_m_in_use"), Some("10"), "{o}");
    let created: usize = o.parse("created_threads");
    assert!(created <= 8, "{o}");
    assert_eq!(o.value("done"), Some("ok"), "{o}");
}

#[test]
fn max_threads_below_procs_is_a_build_error_naming_both_settings() {
    let o = case("fault_builder_threads_below_procs", &[]);
    o.assert_success();
    assert_eq!(
        o.value("error"),
        Some(
            "invalid max_threads=\"2\": expected at least 9: procs + 1, with procs = 8 from Builder::procs"
        ),
        "{o}"
    );
    assert_eq!(o.value("valid"), Some("Ok(())"), "{o}");
    assert_eq!(o.value("value"), Some("42"), "{o}");
}

#[test]
fn max_threads_from_the_environment_below_builder_procs_names_the_variable() {
    let o = case(
        "fault_env_threads_below_builder_procs",
        &[("GORT_MAX_THREADS", "2")],
    );
    o.assert_success();
    assert_eq!(
        o.value("error"),
        Some(
            "invalid GORT_MAX_THREADS=\"2\": expected at least 9: procs + 1, with procs = 8 from Builder::procs"
        ),
        "{o}"
    );
}

#[test]
fn max_threads_below_procs_in_the_environment_is_reported_and_defaulted() {
    let o = case(
        "env_config",
        &[("GORT_MAX_THREADS", "2"), ("GORT_MAXPROCS", "8")],
    );
    o.assert_success();
    assert!(
        o.stderr.contains(
            "gort: invalid GORT_MAX_THREADS=\"2\": expected at least 9: procs + 1, with procs = 8 \
             from GORT_MAXPROCS; using the default 10000"
        ),
        "{o}"
    );
    assert_eq!(o.value("procs"), Some("8"), "{o}");
    assert_eq!(o.value("value"), Some("42"), "{o}");
}

#[test]
fn invalid_environment_values_are_named_and_defaulted() {
    for (var, val, expected) in [
        ("GORT_MAXPROCS", "0", "an integer from 1 to 1024"),
        ("GORT_MAXPROCS", "lots", "an integer from 1 to 1024"),
        (
            "GORT_MAXPROCS",
            "99999999999999999999999",
            "an integer from 1 to 1024",
        ),
        ("GORT_STACK_SIZE", "1", "a size from 16384 to"),
        ("GORT_STACK_SIZE", "12Q", "a size from 16384 to"),
        (
            "GORT_STACK_SIZE",
            "99999999999999999999G",
            "a size from 16384 to",
        ),
        ("GORT_MAX_THREADS", "1", "an integer from 2 to 1000000"),
        ("GORT_MAX_THREADS", "-3", "an integer from 2 to 1000000"),
    ] {
        let o = case("env_config", &[(var, val)]);
        o.assert_success();
        let want = format!("gort: invalid {var}={val:?}: expected {expected}");
        assert!(o.stderr.contains(&want), "{var}={val}: want {want:?}\n{o}");
        assert!(o.stderr.contains("; using the default"), "{o}");
        assert_eq!(o.value("value"), Some("42"), "{var}={val}: {o}");
    }
}

#[test]
fn a_panic_on_the_smallest_stack_with_backtraces_reaches_join() {
    let o = case("fault_small_stack_panic", &[("RUST_BACKTRACE", "1")]);
    o.assert_success();
    assert_eq!(o.value("joined"), Some("err"), "{o}");
    assert!(o.stderr.contains("panicked at"), "{o}");
    assert!(o.stderr.contains("small 16"), "{o}");
    // The backtrace was resolved and printed.
    assert!(o.stderr.contains("stack backtrace:"), "{o}");
    assert!(o.stderr.contains("small_stack_panic"), "{o}");
    assert_eq!(
        o.value("second"),
        Some("cannot create a G: the limit of 1 live G stacks is reached (max_stacks)"),
        "{o}"
    );
    assert_eq!(o.value("done"), Some("ok"), "{o}");
}

#[test]
fn a_panic_in_the_first_callback_is_named_as_a_g() {
    let o = case("fault_callback_panic_first", &[]);
    o.assert_success();
    assert_eq!(o.value("payload"), Some("Some(\"in a callback\")"), "{o}");
    assert!(o.stderr.contains("goroutine "), "{o}");
    assert!(o.stderr.contains(" panicked at "), "{o}");
    assert!(!o.stderr.contains("thread '"), "{o}");
    assert_eq!(o.value("after"), Some("1"), "{o}");
}

#[test]
fn try_go_under_an_address_space_limit_fills_it_and_fails_cleanly() {
    let _heavy = heavy();
    if under_qemu() {
        // qemu-user maps the guest's address space itself; RLIMIT_AS limits
        // the emulator, not the program.
        eprintln!("skipped under qemu: RLIMIT_AS applies to the emulator");
        return;
    }
    let o = case("fault_address_space_limit", &[("AS_LIMIT_MB", "2000")]);
    o.assert_success();
    let spawned: usize = o.parse("spawned");
    let err = o.value("error").unwrap();
    assert!(
        err.contains("ulimit -v") && err.contains("stack_size"),
        "the error says what would help: {o}"
    );
    // Stacks fill the address space up to the reserve kept for the rest of
    // the process, not to the last whole 1 GiB chunk (4,079 256 KiB stacks
    // fit in 2000 MiB that way).
    let stride_kib = if cfg!(target_pointer_width = "64") {
        260
    } else {
        68
    };
    let vm: u64 = o.parse("vm_kib");
    assert!(
        vm > (2000 << 10) - (2000 << 10) / 8,
        "address space used {vm} KiB of 2000 MiB ({spawned} stacks of {stride_kib} KiB)\n{o}"
    );
    assert_eq!(o.value("malloc"), Some("8388608"), "{o}");
    assert_eq!(o.value("after"), Some("5"), "{o}");
}

#[test]
fn the_relay_watchdog_names_every_silent_m() {
    let _heavy = heavy();
    let o = case(
        "crash_silent_foreign_threads",
        &[("GORT_TRACEBACK", "crash")],
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    let silent: Vec<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("silent="))
        .collect();
    assert_eq!(silent.len(), 3, "{o}");
    for s in silent {
        let want =
            format!("gort: {s} (a foreign thread) did not answer the crash relay within 5 s");
        assert!(o.stderr.contains(&want), "{want:?} missing:\n{o}");
    }
    assert!(
        o.stderr
            .contains("gort: aborting without the stacks of 3 Ms"),
        "{o}"
    );
}

#[test]
fn fork_in_a_g_refuses_the_runtime_in_the_child_and_exec_works() {
    let _heavy = heavy();
    // Under qemu-user each fork copies the emulator too: fewer.
    let forks = if under_qemu() { "30" } else { "300" };
    let o = case("fault_fork_in_g", &[("FORKS", forks)]);
    o.assert_success();
    let third: usize = forks.parse::<usize>().unwrap() / 3;
    assert_eq!(o.value("hung"), Some("0"), "{o}");
    assert_eq!(o.value("other"), Some("[]"), "{o}");
    assert_eq!(o.parse::<usize>("spawn_refused"), third, "{o}");
    assert_eq!(o.parse::<usize>("park_refused"), third, "{o}");
    assert_eq!(o.parse::<usize>("exec_ok"), third, "{o}");
    assert!(
        o.stderr.contains(
            "fatal error: fork: the runtime cannot schedule Gs in a forked child (its threads \
             stayed in the parent); call exec or _exit after fork"
        ),
        "{o}"
    );
}

#[test]
fn panics_with_any_payload_and_in_drop_reach_join() {
    let o = case("fault_panic_payloads", &[]);
    o.assert_success();
    assert_eq!(o.value("struct_payload"), Some("Some(Code(7))"), "{o}");
    assert_eq!(o.value("int_payload"), Some("Some(42)"), "{o}");
    assert_eq!(
        o.value("drop_payload"),
        Some("Some(\"panic in drop\")"),
        "{o}"
    );
    assert_eq!(o.value("callback_payload"), Some("Some(Code(9))"), "{o}");
    // The hook names the G and says the payload is not a string.
    assert!(o.stderr.contains("Box<dyn Any>"), "{o}");
    assert!(!o.stderr.contains("thread '"), "{o}");
    assert_eq!(o.value("after"), Some("3"), "{o}");
}

#[test]
fn a_panic_in_drop_while_unwinding_aborts_with_the_g_named() {
    let o = case("crash_panic_in_drop_while_unwinding", &[]);
    // Rust aborts on a panic during unwinding; gort reports the abort.
    assert_eq!(o.code, Some(2), "{o}");
    assert!(!o.stdout.contains("unreachable"), "{o}");
    assert!(
        o.stderr.contains("goroutine 2 'unwinder' panicked at"),
        "{o}"
    );
    assert!(
        o.stderr.contains("panic in a destructor during cleanup"),
        "{o}"
    );
    assert!(o.stderr.contains("fatal signal SIGABRT"), "{o}");
    assert!(o.stderr.contains("[goroutine 2 name: unwinder]"), "{o}");
    assert!(o.stderr.contains("goroutine 2 [running]:"), "{o}");
    assert!(o.stderr.contains("panic_while_unwinding_function"), "{o}");
}

#[test]
fn duration_max_timeouts_wait_for_ever_without_overflow() {
    let o = case("fault_duration_max", &[]);
    o.assert_success();
    assert_eq!(o.value("recv_timeout"), Some("Ok(5)"), "{o}");
    assert_eq!(o.value("wait_timeout"), Some("true"), "{o}");
    assert_eq!(o.value("after_max"), Some("Err(Timeout)"), "{o}");
    assert_eq!(o.value("read_deadline"), Some("Ok((1, 120))"), "{o}");
    // The G asleep for Duration::MAX is parked, and the process exited.
    assert_eq!(o.value("sleeping_gs"), Some("1"), "{o}");
}

#[test]
fn emfile_in_an_accept_loop_is_an_error_and_the_connection_waits() {
    let o = case("fault_emfile_accept", &[]);
    o.assert_success();
    assert_eq!(
        o.value("full"),
        Some(format!("Err(Some({}))", libc::EMFILE).as_str()),
        "{o}"
    );
    assert_eq!(o.value("again"), Some("(Ok(()), Ok(()))"), "{o}");
}

#[test]
fn sigquit_while_a_g_is_in_a_plain_blocking_call_dumps_it() {
    // Crash mode: the M blocked in read(2) dumps its own stack.
    let o = tests::run_signalled(
        BIN,
        &["crash_quit_in_blocking_call"],
        &[("GORT_TRACEBACK", "crash")],
        Some(libc::SIGQUIT),
        tests::crash_limit(),
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    assert!(o.stderr.starts_with("fatal signal SIGQUIT"), "{o}");
    // Through libc's read back to the G's code. On i686 the walker follows
    // frame pointers only and glibc's read has none, so the frame that
    // called it is skipped: its caller is there.
    let caller = if cfg!(target_arch = "x86") {
        "quit_in_blocking_call"
    } else {
        "blocked_in_plain_read_function"
    };
    assert!(o.stderr.contains(caller), "{o}");
    // Default level: the G is listed; its stack is shown if the kernel
    // gave the signal to its M, else said to be with that M.
    let o = tests::run_signalled(
        BIN,
        &["crash_quit_in_blocking_call"],
        &[],
        Some(libc::SIGQUIT),
        tests::crash_limit(),
    );
    assert_eq!(o.code, Some(2), "{o}");
    // sysmon found the G's thread asleep in the kernel: Go's `syscall`.
    // Under qemu-user, whose guest threads show the host's system calls in
    // /proc, the G may also still show as `running`.
    assert!(
        o.stderr.contains("goroutine 2 [syscall]:")
            || (under_qemu() && o.stderr.contains("goroutine 2 [running]:")),
        "{o}"
    );
    assert!(
        o.stderr
            .contains("goroutine running on other thread; stack unavailable")
            || o.stderr.contains(caller),
        "{o}"
    );
}

#[test]
fn a_crash_with_10k_gs_and_100_callbacks_in_flight_dumps_within_a_second() {
    let _heavy = heavy();
    // The bound is a second (a dump that waits for a relay timeout, or
    // for the symbolizer thread behind its start-up work, takes seconds).
    // A CI machine's two cores shared with other jobs can stretch any one
    // run past it, so the crash gets three tries: a real slowdown fails
    // all three, a burst of load elsewhere only one.
    let mut took = Vec::new();
    for _ in 0..3 {
        let o = case("crash_busy_process", &[("GORT_TRACEBACK", "crash")]);
        assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
        assert!(o.stderr.contains("ten_thousand_parked_function"), "{o}");
        assert!(o.stderr.contains("mid_flight_callback_function"), "{o}");
        // Every M with a thread dumped: the 100 foreign threads' Ms too.
        assert!(
            o.section_ms().len() > 100,
            "{} sections",
            o.section_ms().len()
        );
        assert!(!o.stderr.contains("did not answer the crash relay"), "{o}");
        took.push(o.since("crash_at"));
        if took
            .last()
            .is_some_and(|t| *t < tests::scaled(std::time::Duration::from_secs(1)))
        {
            return;
        }
    }
    panic!("the dump took more than a second in each of three runs: {took:?}");
}

#[test]
fn twenty_thousand_short_lived_foreign_threads_leave_no_growth() {
    let _heavy = heavy();
    // Under qemu-user a thread start costs ~1 ms: fewer.
    let n = if under_qemu() { "2000" } else { "20000" };
    let o = case("fault_short_lived_foreign_threads", &[("THREADS", n)]);
    o.assert_success();
    assert_eq!(o.value("calls"), Some(n), "{o}");
    // A leak would grow by one per thread (18,000); a few more runtime Ms
    // may start when the machine is loaded.
    let (t0, t1): (usize, usize) = (o.parse("threads_before"), o.parse("threads_after"));
    assert!(t1 <= t0 + 8, "threads {t0} -> {t1}\n{o}");
    let (m0, m1): (usize, usize) = (o.parse("mcount_before"), o.parse("mcount_after"));
    assert!(m1 <= m0 + 8, "mcount {m0} -> {m1}\n{o}");
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
    if under_qemu() {
        // qemu-user keeps per-thread emulator state (hundreds of MB for
        // 2,000 guest threads) in the same RSS.
        eprintln!("RSS not checked under qemu: it counts the emulator's own memory");
        return;
    }
    let rss: u64 = o.parse("rss_growth_kib");
    assert!(rss < 16 << 10, "RSS grew by {rss} KiB\n{o}");
}

#[test]
fn a_g_stack_overflow_is_reported_at_every_traceback_level() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: guard pages are mprotect pages there and qemu reports the overflow fault differently"
        );
        return;
    }
    for level in ["none", "single", "all", "system", "crash"] {
        let o = case("crash_g_stack_overflow", &[("GORT_TRACEBACK", level)]);
        if level == "crash" {
            assert_eq!(o.signal, Some(libc::SIGABRT), "{level}: {o}");
        } else {
            assert_eq!(o.code, Some(2), "{level}: {o}");
        }
        assert!(o.stderr.starts_with("fatal signal SIGSEGV"), "{level}: {o}");
        // Go's words for it.
        assert!(
            o.stderr
                .contains("runtime: goroutine 2 stack exceeds 65536-byte limit"),
            "{level}: {o}"
        );
        // Every level but none shows the recursion, cut as Go cuts it.
        assert_eq!(
            o.stderr.contains("...additional frames elided..."),
            level != "none",
            "{level}: {o}"
        );
    }
}

#[test]
fn a_callback_that_overflows_its_stack_is_reported_as_a_g() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: guard pages are mprotect pages there and qemu reports the overflow fault differently"
        );
        return;
    }
    let o = case("crash_callback_stack_overflow", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("stack exceeds"), "{o}");
    assert!(o.stderr.contains("locked to thread]"), "{o}");
    assert!(o.stderr.contains("recurse_forever"), "{o}");
}

#[test]
fn a_crash_in_a_forked_child_does_not_wait_for_the_parents_threads() {
    let o = case(
        "fault_crash_in_forked_child",
        &[("GORT_TRACEBACK", "crash")],
    );
    o.assert_success();
    assert_eq!(o.parse::<i32>("child_signal"), libc::SIGABRT, "{o}");
    let ms: u64 = o.parse("child_ms");
    assert!(
        ms < tests::scaled(std::time::Duration::from_secs(3)).as_millis() as u64,
        "the child's crash took {ms} ms (the relay waited for threads it does not have)\n{o}"
    );
    assert!(o.stderr.contains("fatal signal SIGSEGV"), "{o}");
    assert!(!o.stderr.contains("did not answer the crash relay"), "{o}");
}

// Cases of the matrix tested elsewhere, with the same child-process
// pattern:
//
// - C-ABI misuse status codes (null function, `gort_dropm` without an M, on
//   a runtime thread, inside a callback, `gort_needm` twice, a callback
//   during exit): `ffi_foreign.rs`, `misuse_of_the_c_abi_returns_status_codes`
//   and `a_callback_during_exit_is_refused`; calls before the runtime
//   started, `gort_callback` from a signal handler that interrupted a G, and
//   the codes in a forked child: `ffi_capi.rs`,
//   `calls_before_the_runtime_started_return_codes`,
//   `a_signal_handler_that_interrupted_a_g_gets_an_error_not_a_crash`,
//   `a_forked_child_gets_a_code_for_new_gs_and_callbacks`.
// - `max_stacks` reached: `sched_scenarios.rs`,
//   `try_go_fails_cleanly_at_the_stack_limit`; `vm.max_map_count` with
//   mprotect guards: `mprotect_guards_report_vm_max_map_count`.
// - `GORT_MAX_THREADS` reached by runtime threads: `sched_scenarios.rs`,
//   `the_thread_limit_is_a_clear_fatal_error`.
// - An invalid `GORT_TRACEBACK`: `crash_dump.rs`,
//   `an_invalid_traceback_level_is_reported`.
// - 10,000 concurrent connections: `net_tcp.rs`,
//   `ten_thousand_concurrent_connections_echo`.
// - An OS thread's own stack overflow: `crash_dump.rs`,
//   `an_os_thread_overflow_still_gets_stds_message`.
