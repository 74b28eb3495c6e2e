//! Foreign threads calling into gort through the C ABI: each test runs a
//! scenario (real C threads from `tests/c/foreign.c`) in a child process.

use std::time::Duration;
use tests::{Outcome, scenario, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn run(name: &str, env: &[(&str, &str)]) -> Outcome {
    let limit = if under_qemu() {
        Duration::from_secs(240)
    } else {
        Duration::from_secs(60)
    };
    scenario(BIN, name, env, limit)
}

#[test]
fn thirty_two_c_threads_times_ten_thousand_callbacks_spawning_gs() {
    // Under qemu a tenth of the calls keeps the run short; same code paths.
    let calls = if under_qemu() { "1000" } else { "10000" };
    let o = run("ffi_many_threads", &[("THREADS", "32"), ("CALLS", calls)]);
    o.assert_success();
    assert_eq!(o.value("status"), Some("0"), "{o}");
    assert_eq!(o.value("count"), o.value("expected"), "{o}");
    assert_eq!(
        o.value("extra_m_in_use"),
        Some("0"),
        "Ms not returned at thread exit\n{o}"
    );
}

#[test]
fn short_lived_c_threads_do_not_leak_ms() {
    let o = run("ffi_short_lived", &[]);
    o.assert_success();
    assert_eq!(o.value("status"), Some("0"), "{o}");
    assert_eq!(o.value("count"), Some("1000"), "{o}");
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
    let mcount: usize = o.parse("mcount");
    // 1,000 threads, at most 16 alive at once: the pool stays small.
    assert!(mcount <= 40, "Ms leaked: mcount={mcount}\n{o}");
    let threaded: usize = o.parse("threaded_ms");
    assert_eq!(
        threaded,
        o.parse::<usize>("ms_with_live_thread"),
        "mcount - extra_m_count != live threads\n{o}"
    );
    assert_eq!(threaded, o.parse::<usize>("ms_claiming_thread"), "{o}");
}

#[test]
fn a_blocking_callback_resumes_and_the_thread_keeps_its_m() {
    let o = run("ffi_blocking_callback", &[]);
    o.assert_success();
    assert!(o.stdout.contains("first=0 second=0 dropm=0"), "{o}");
    assert_eq!(o.value("count"), Some("14"), "{o}");
    assert_eq!(o.value("same_thread"), Some("true"), "{o}");
    assert_eq!(o.value("same_m"), Some("true"), "{o}");
    assert_eq!(o.value("extra_m_in_use_after"), Some("0"), "{o}");
}

#[test]
fn runtime_to_c_to_runtime_on_one_thread() {
    let o = run("ffi_nested", &[]);
    o.assert_success();
    assert!(
        o.stdout
            .contains("status=0 status_plain=0 same_thread=true same_g=true"),
        "{o}"
    );
    assert_eq!(
        o.value("extra_m_in_use"),
        Some("0"),
        "a nested callback took an extra M\n{o}"
    );
}

#[test]
fn misuse_of_the_c_abi_returns_status_codes() {
    let o = run("ffi_misuse", &[]);
    o.assert_success();
    for (k, v) in [
        ("null_fn", "-1"),
        ("dropm_fresh", "-2"),
        ("needm_first", "0"),
        ("needm_again", "-7"),
        ("dropm_bound", "0"),
        ("dropm_again", "-2"),
        ("dropm_on_g", "-3"),
        ("dropm_in_callback", "-4"),
    ] {
        assert_eq!(o.value(k), Some(v), "{k}\n{o}");
    }
}

#[test]
fn a_callback_during_exit_is_refused() {
    let o = run("ffi_during_exit", &[]);
    o.assert_success();
    assert_eq!(o.value("callback_during_exit"), Some("-5"), "{o}");
}

#[test]
fn one_proc_a_g_in_a_long_c_call_does_not_stop_others() {
    let o = run("ffi_syscall_handoff", &[("GORT_MAXPROCS", "1")]);
    o.assert_success();
    assert_eq!(o.value("sum"), Some("4950"), "{o}");
    tests::assert_others_not_stalled(&o);
}

#[test]
fn the_c_example_runs() {
    let o = run("ffi_c_example", &[]);
    o.assert_success();
    assert_eq!(o.value("rc"), Some("0"), "{o}");
    assert!(
        o.stdout
            .contains("12 callbacks from 4 C threads, 24 Gs started from C"),
        "{o}"
    );
    assert!(
        o.stdout
            .contains("joined 4 Gs spawned from C, results summing to 30"),
        "{o}"
    );
    assert!(
        o.stdout
            .contains("gort_join twice -> this G was joined already"),
        "{o}"
    );
}

#[test]
fn concurrent_needm_and_dropm_keep_the_counters_exact() {
    let o = run("ffi_needm_stress", &[]);
    o.assert_success();
    assert_eq!(o.value("extra_m_in_use"), Some("0"), "{o}");
    let (mcount, extra): (usize, usize) = (o.parse("mcount"), o.parse("extra_m_count"));
    // At most 8 threads are bound at once; each needm that empties the list
    // (or finds it empty) makes at most one spare more: no more than
    // 2 * 8 + 1 extra Ms can exist, whatever the interleaving.
    assert!((1..=17).contains(&extra) && mcount >= extra, "{o}");
}
