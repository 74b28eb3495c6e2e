//! Scheduler behaviour that needs its own configuration: each test runs a
//! named scenario of the `scenarios` program in a child process.

use std::time::Duration;
use tests::{Outcome, scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn run(name: &str, env: &[(&str, &str)]) -> Outcome {
    let limit = if under_qemu() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(30)
    };
    scenario(BIN, name, env, limit)
}

#[test]
fn two_gs_calling_yield_alternate() {
    let o = run("yield_alternates", &[("GORT_MAXPROCS", "1")]);
    o.assert_success();
    let order = o.value("order").unwrap();
    assert_eq!(order.len(), 10, "{o}");
    let alternated = order == "ababababab" || order == "bababababa";
    // Under qemu-user, emulated threads sleep in qemu's own futexes (code
    // translation), which sysmon may read as a G blocked in the kernel and
    // answer by retaking the P; natively nothing here blocks.
    let retaken = under_qemu() && o.parse::<u64>("retakes") > 0;
    assert!(
        alternated || retaken,
        "yields did not alternate: {order}\n{o}"
    );
}

#[test]
fn one_proc_is_fair_among_100_yielders() {
    let o = run("many_yielders", &[("GORT_MAXPROCS", "1")]);
    o.assert_success();
    let (min, max): (usize, usize) = (o.parse("min"), o.parse("max"));
    assert!(min > 0, "a yielding G never ran\n{o}");
    assert!(
        max <= min + min / 10 + 2,
        "unfair: min {min} max {max}\n{o}"
    );
}

#[test]
fn with_two_procs_both_ms_run_gs() {
    let o = run("two_procs_both_run", &[("GORT_MAXPROCS", "2")]);
    o.assert_success();
    assert_eq!(o.value("together"), Some("true"), "{o}");
    assert_eq!(o.parse::<usize>("threads"), 2, "{o}");
}

#[test]
fn try_go_fails_cleanly_at_the_stack_limit() {
    let o = run("stack_limit", &[]);
    o.assert_success();
    // The spare extra M's stack is not counted: max_stacks bounds Gs.
    let spawned: usize = o.parse("spawned");
    assert_eq!(spawned, 100, "{o}");
    let err = o.value("error").unwrap();
    assert!(err.contains("100"), "error does not name the limit: {err}");
    assert_eq!(o.value("after"), Some("Ok(5)"), "{o}");
}

#[test]
fn mprotect_guards_report_vm_max_map_count() {
    if under_qemu() {
        // Tens of thousands of mappings under qemu-user take minutes; the
        // path is the same code as natively.
        eprintln!("skipped under qemu: too slow to exhaust vm.max_map_count");
        return;
    }
    let o = run("map_limit", &[]);
    o.assert_success();
    let spawned: usize = o.parse("spawned");
    let err = o.value("error").unwrap();
    assert!(
        err.contains("vm.max_map_count"),
        "error does not name vm.max_map_count: {err}"
    );
    assert!(spawned > 1000, "{o}");
    assert_eq!(o.value("joined"), Some("ok"), "{o}");
}

#[test]
fn invalid_environment_values_are_reported_and_defaulted() {
    for (var, val) in [
        ("GORT_MAXPROCS", "lots"),
        ("GORT_MAXPROCS", "0"),
        ("GORT_STACK_SIZE", "12Q"),
        ("GORT_STACK_SIZE", "1"),
        ("GORT_MEMBARRIER", "yes"),
    ] {
        let o = run("env_config", &[(var, val)]);
        o.assert_success();
        assert!(
            o.stderr.contains(var) && o.stderr.contains(val),
            "no message naming {var}={val}:\n{o}"
        );
        assert_eq!(o.value("value"), Some("42"), "{o}");
    }
    let o = run("env_config", &[("GORT_MAXPROCS", "3")]);
    assert_eq!(o.value("procs"), Some("3"), "{o}");
    assert!(o.stderr.is_empty(), "{o}");
}

#[test]
fn panic_message_names_the_g() {
    let o = run("panic_names_g", &[]);
    o.assert_success();
    let id = o.value("id").unwrap();
    let expect = format!("goroutine {id} 'doomed' panicked at");
    assert!(o.stderr.contains(&expect), "expected {expect:?}:\n{o}");
    assert!(o.stderr.contains("boom 7"), "{o}");
    assert_eq!(o.value("payload"), Some("Some(\"boom 7\")"), "{o}");
    assert_eq!(o.value("after"), Some("1"), "{o}");
}

#[test]
fn process_exits_when_main_returns_with_live_gs() {
    let o = run("exit_with_live_gs", &[("GORT_MAXPROCS", "2")]);
    o.assert_success();
    assert!(o.stdout.contains("returning"), "{o}");
}

#[test]
fn idle_runtime_uses_almost_no_cpu() {
    let o = run("idle_cpu", &[]);
    o.assert_success();
    let cpu: u64 = o.parse("cpu_ms");
    assert!(cpu < 50, "idle runtime used {cpu} ms of CPU in 1 s\n{o}");
}

#[test]
fn the_thread_limit_is_a_clear_fatal_error() {
    let o = run(
        "thread_limit",
        &[("GORT_MAX_THREADS", "4"), ("GORT_MAXPROCS", "2")],
    );
    // A fatal error exits with status 2 after the dump, as in Go.
    assert_eq!(o.code, Some(2), "expected exit status 2:\n{o}");
    assert!(
        o.stderr.contains("fatal error: new_m: thread exhaustion"),
        "{o}"
    );
    assert!(o.stderr.contains("GORT_MAX_THREADS"), "{o}");
    assert!(!o.stdout.contains("unreachable"), "{o}");
}

#[test]
fn a_g_exiting_while_locked_takes_its_thread() {
    let o = run("locked_exit", &[]);
    o.assert_success();
    assert_eq!(o.value("thread_gone"), Some("true"), "{o}");
    assert_eq!(o.value("works"), Some("9"), "{o}");
}

#[test]
fn stress_with_more_ps_than_cores() {
    for procs in ["1", "3", "8"] {
        let o = run("stress", &[("GORT_MAXPROCS", procs)]);
        o.assert_success();
        assert_eq!(o.value("total"), o.value("expected"), "procs={procs}\n{o}");
    }
}
