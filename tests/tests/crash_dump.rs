//! Crash tracing: each test runs a crash scenario in a child process with a
//! hard time limit and asserts on the dump and on how the process ended.

use std::time::Duration;
use tests::{Outcome, crash_limit, run_signalled, scaled, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn run(name: &str, env: &[(&str, &str)]) -> Outcome {
    run_signalled(BIN, &[name], env, None, crash_limit())
}

fn run_quit(name: &str, env: &[(&str, &str)]) -> Outcome {
    run_signalled(BIN, &[name], env, Some(libc::SIGQUIT), crash_limit())
}

#[test]
fn a_segfault_in_a_g_prints_the_g_and_exits_2() {
    let o = run("crash_segv_in_g", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    let first = o
        .stderr
        .lines()
        .find(|l| l.starts_with("fatal signal"))
        .unwrap_or_else(|| panic!("{o}"));
    assert!(
        first.contains("SIGSEGV") && first.contains("addr=0x0") && first.contains(" m="),
        "{first}"
    );
    assert!(o.stderr.contains("\nPC=0x"), "{o}");
    assert!(o.stderr.contains(" name: faulty]\ngoroutine "), "{o}");
    assert!(o.stderr.contains(" [running]:\n"), "{o}");
    assert!(
        o.stderr.contains("crash_here_with_null_read"),
        "the faulting function is not named:\n{o}"
    );
    assert!(o.stderr.contains("created by "), "{o}");
    assert!(o.stderr.contains("\nmodules:\n"), "{o}");
    // Registers in Go's layout.
    let reg = if cfg!(target_arch = "x86_64") {
        "rip    0x"
    } else if cfg!(target_arch = "aarch64") {
        "pc     0x"
    } else {
        "eip    0x"
    };
    assert!(o.stderr.contains(reg), "{o}");
}

#[test]
fn the_handler_allocates_nothing() {
    let o = run("crash_noalloc", &[]);
    assert_eq!(o.value("allocs_during_dump"), Some("0"), "{o}");
    assert!(o.stderr.contains("fatal signal SIGSEGV"), "{o}");
}

#[test]
fn sigquit_from_outside_dumps_every_g_grouped_and_exits_2() {
    let o = run_quit("crash_quit_dumps_all", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("SIGQUIT: quit"), "{o}");
    assert!(o.stderr.contains("parked_sleeper_function"), "{o}");
    assert!(
        o.stderr
            .contains("[99 more goroutines with the stack of goroutine "),
        "identical stacks not grouped:\n{o}"
    );
    assert!(o.stderr.contains("[sleep"), "{o}");
}

#[test]
fn created_by_names_the_function_that_called_go_at_the_line_of_the_call() {
    let o = run_quit("crash_created_by_sites", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/bin/scenarios/crash_scenarios.rs"
    ))
    .expect("the scenario's source");
    // Go's meaning: the function that executed the `go` statement (a
    // closure that spawns is that closure), at the line of the call.
    for (name, spawner) in [
        (
            "closure",
            "scenarios::crash_scenarios::spawns_with_a_closure",
        ),
        ("function", "scenarios::crash_scenarios::spawns_a_function"),
        (
            "in_closure",
            "scenarios::crash_scenarios::spawns_from_a_closure::{{closure}}",
        ),
    ] {
        let named = format!(" name: {name}]\n");
        let block = o
            .stderr
            .split("\n\n")
            .find(|b| b.contains(&named))
            .unwrap_or_else(|| panic!("no G named {name}:\n{o}"));
        let created = block
            .lines()
            .skip_while(|l| !l.starts_with("created by "))
            .take(2)
            .collect::<Vec<_>>();
        // One spelling of closures in a dump: the symbol table's, legacy
        // (`{{closure}}`) or v0 (`{closure#0}`, Debian's rustc for the
        // cross builds), whatever the debug-info level.
        assert!(
            !(block.contains("{{closure}}") && block.contains("{closure#")),
            "two spellings of closures:\n{block}"
        );
        // Spawned by the main thread, which is no G: no `in goroutine N`.
        assert_eq!(
            created
                .first()
                .map(|l| l.replace("{closure#0}", "{{closure}}"))
                .as_deref(),
            Some(format!("created by {spawner}").as_str()),
            "{name}:\n{block}"
        );
        // The call's line: the first `.spawn(` from the `.name(..)` on.
        let named_at = src
            .lines()
            .position(|l| l.contains(&format!(".name(\"{name}\")")))
            .expect("the spawn line");
        let want_line = 1
            + named_at
            + src
                .lines()
                .skip(named_at)
                .position(|l| l.contains(".spawn("))
                .expect("the spawn call");
        let file_line = created.get(1).copied().unwrap_or("");
        assert!(
            file_line.starts_with('\t')
                && file_line.ends_with(&format!(
                    "/tests/src/bin/scenarios/crash_scenarios.rs:{want_line}"
                )),
            "{name}: {file_line:?}\n{block}"
        );
    }
}

#[test]
fn crash_mode_relays_to_every_m_with_a_thread() {
    let o = run_quit(
        "crash_dumps_all_threads",
        &[("GORT_TRACEBACK", "crash"), ("GORT_MAXPROCS", "5")],
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "crash mode must abort:\n{o}");
    let n = o.stderr.matches("busy_loop_function").count();
    assert_eq!(
        n, 4,
        "each busy G's function must appear exactly once per G (4):\n{o}"
    );
    assert!(o.stderr.contains("-----"), "{o}");
    assert!(!o.stderr.contains("did not answer"), "{o}");
}

#[test]
fn the_seed_pooled_extra_ms_do_not_delay_the_crash() {
    let o = run("crash_seed", &[("GORT_TRACEBACK", "crash")]);
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    let extra: usize = o.parse("extra_m_count");
    let mcount: usize = o.parse("mcount");
    assert!(
        extra >= 100,
        "the pool should hold the 100 foreign threads' Ms: {extra}\n{o}"
    );
    // Go's bug took 5 s (one relay timeout per threadless M); gort must end
    // well under a second from the fault to the exit.
    let took = o.since("crash_at_ns");
    assert!(
        took < scaled(Duration::from_millis(900)),
        "crash took {took:?} from the fault to the exit\n{o}"
    );
    assert!(
        !o.stderr.contains("did not answer"),
        "the relay waited for a threadless M:\n{o}"
    );
    // One section per M that owns a thread, none for a pooled M.
    let pooled: Vec<usize> = o
        .value("extra_m_ids")
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(pooled.len(), extra, "{o}");
    let sections = o.section_ms();
    assert_eq!(
        sections.len(),
        mcount - extra,
        "one section per M with a thread (mcount - extra_m_count):\n{o}"
    );
    for m in &sections {
        let m = m.unwrap_or_else(|| panic!("a section without an M:\n{o}"));
        assert!(
            !pooled.contains(&m),
            "m={m} is on the extra list (no thread) but has a section:\n{o}"
        );
    }
    let mut distinct = sections.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), sections.len(), "an M dumped twice:\n{o}");
}

#[test]
fn a_g_stack_overflow_is_named_and_collapsed() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: guard pages are mprotect pages there and qemu reports the overflow fault differently"
        );
        return;
    }
    let o = run("crash_g_stack_overflow", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("-byte limit\n"), "{o}");
    assert!(
        o.stderr.contains("\n...additional frames elided...\n"),
        "recursion not collapsed:\n{o}"
    );
    assert!(o.stderr.contains("recurse_forever"), "{o}");
}

#[test]
fn an_os_thread_overflow_still_gets_stds_message() {
    let o = run("crash_thread_stack_overflow", &[]);
    assert!(o.stderr.contains("has overflowed its stack"), "{o}");
    assert!(
        o.signal == Some(libc::SIGABRT) || o.signal == Some(libc::SIGSEGV),
        "{o}"
    );
}

#[test]
fn an_unhandled_panic_in_crash_mode_aborts_with_the_dump() {
    let o = run("crash_panic_in_crash_mode", &[("GORT_TRACEBACK", "crash")]);
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    assert!(o.stderr.contains("unhandled in crash mode"), "{o}");
    assert!(
        o.stderr.contains("fatal error: unhandled panic in a G"),
        "{o}"
    );
    assert!(!o.stdout.contains("unreachable"), "{o}");
}

#[test]
fn a_fault_on_a_plain_thread_is_reported() {
    let o = run("crash_segv_on_plain_thread", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("fatal signal SIGSEGV"), "{o}");
    assert!(o.stderr.contains("crash_here_with_null_read"), "{o}");
}

#[test]
fn a_handler_without_sa_onstack_is_reported() {
    let o = run("crash_handler_without_onstack", &[]);
    o.assert_success();
    assert!(o.stderr.contains("without SA_ONSTACK"), "{o}");
}

#[test]
fn traceback_none_prints_only_the_signal() {
    let o = run("crash_segv_in_g", &[("GORT_TRACEBACK", "none")]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("fatal signal SIGSEGV"), "{o}");
    assert!(!o.stderr.contains("goroutine "), "{o}");
}

#[test]
fn an_invalid_traceback_level_is_reported() {
    let o = run("crash_segv_in_g", &[("GORT_TRACEBACK", "loud")]);
    assert!(o.stderr.contains("invalid GORT_TRACEBACK=\"loud\""), "{o}");
    assert_eq!(o.code, Some(2), "{o}");
}

/// Deadlock detection counts the process's threads in /proc/self/task;
/// qemu-user runs threads of its own in the process, so there it (rightly,
/// conservatively) never concludes that nobody can wake a G.
fn no_deadlock_reports_here() -> bool {
    if under_qemu() {
        eprintln!("skipped under qemu-user: its own threads appear in /proc/self/task");
    }
    under_qemu()
}

#[test]
fn a_deadlock_is_reported_with_the_dump() {
    if no_deadlock_reports_here() {
        return;
    }
    let o = run("crash_deadlock", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        o.stderr
            .contains("fatal error: all goroutines are asleep - deadlock!"),
        "{o}"
    );
    assert!(o.stderr.contains("[sync.WaitGroup.Wait"), "{o}");
    assert!(!o.stdout.contains("unreachable"), "{o}");
}

#[test]
fn a_deadlock_is_reported_once_the_last_other_thread_exits() {
    if no_deadlock_reports_here() {
        return;
    }
    let o = run("crash_deadlock_after_thread_exits", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        o.stderr
            .contains("fatal error: all goroutines are asleep - deadlock!"),
        "{o}"
    );
    assert!(!o.stdout.contains("unreachable"), "{o}");
    // The thread exits after 1.5 s; sysmon looks again 0.5 s, then 1 s,
    // after its quiet rounds.
    assert!(o.elapsed < Duration::from_secs(6), "{o}");
}

#[test]
fn a_plain_thread_that_can_still_wake_gs_is_not_a_deadlock() {
    let o = run("crash_not_a_deadlock", &[]);
    o.assert_success();
    assert!(o.stdout.contains("finished"), "{o}");
    assert!(!o.stderr.contains("deadlock"), "{o}");
}

#[test]
fn a_fault_inside_the_handler_ends_the_process_with_the_original_signal() {
    // The scenario's G divides by zero (SIGFPE); the self-test hook makes the
    // handler fault (SIGSEGV) after its first line.
    let o = run(
        "crash_sigfpe",
        &[("GORT_CRASH_SELFTEST", "fault-in-handler")],
    );
    assert!(o.stderr.contains("fatal signal SIGFPE"), "{o}");
    assert_eq!(
        o.signal,
        Some(libc::SIGFPE),
        "must die of the original signal:\n{o}"
    );
    // qemu-user writes a core file of its own before dying: slower there.
    let bound = if under_qemu() { 60 } else { 5 };
    assert!(o.elapsed < Duration::from_secs(bound), "{o}");
}

#[test]
fn sigfpe_in_a_g_is_reported() {
    let o = run("crash_sigfpe", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    // aarch64 integer division by zero does not trap: there the scenario
    // raises SIGFPE itself, with another code.
    let expect = if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        "fatal signal SIGFPE: floating-point exception code=1(FPE_INTDIV)"
    } else {
        "fatal signal SIGFPE: floating-point exception"
    };
    assert!(o.stderr.contains(expect), "{o}");
    assert!(o.stderr.contains("divide_by"), "{o}");
}
