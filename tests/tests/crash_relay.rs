//! Crash relay (`GORT_TRACEBACK=crash`) with threads the runtime does not
//! own, and several Ms dying at once: each scenario runs in a child process
//! with a hard time limit; the tests count the dump's sections against the M
//! counts the scenario printed before the crash.

use std::time::Duration;
use tests::{Outcome, crash_limit, run_signalled, scaled, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn ids(o: &Outcome, key: &str) -> Vec<usize> {
    o.value(key)
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect()
}

#[test]
fn idle_c_threads_neither_get_the_relay_nor_hide_an_m() {
    let o = run_signalled(
        BIN,
        &["crash_idle_c_threads"],
        &[("GORT_TRACEBACK", "crash"), ("GORT_MAXPROCS", "2")],
        Some(libc::SIGQUIT),
        crash_limit(),
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "crash mode must abort:\n{o}");
    let c_tids = ids(&o, "c_tids");
    assert_eq!(c_tids.len(), 4, "{o}");
    // A signal handler that ran on a C thread makes its pause() return,
    // and the fixture says so.
    assert!(
        !o.stderr.contains("c_thread_interrupted"),
        "a signal reached an idle C thread:\n{o}"
    );
    // The thread that prints the summary line is a runtime M, never one of
    // the C threads (nor any thread without an M).
    let first = o
        .stderr
        .lines()
        .find(|l| l.starts_with("fatal signal SIGQUIT"))
        .unwrap_or_else(|| panic!("no summary line:\n{o}"));
    assert!(!first.contains("m=none"), "{first}\n{o}");
    for t in &c_tids {
        assert!(
            !first.contains(&format!(" tid={t} ")),
            "C thread {t} took the SIGQUIT:\n{o}"
        );
    }
    // Every M with a thread printed exactly one section; none is missing.
    let mcount: usize = o.parse("mcount");
    let extra: usize = o.parse("extra_m_count");
    let sections = o.section_ms();
    assert_eq!(
        sections.len(),
        mcount - extra,
        "sections (one per M with a thread) vs mcount - extra_m_count:\n{o}"
    );
    assert!(sections.iter().all(Option::is_some), "{o}");
    let mut distinct = sections.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), sections.len(), "an M dumped twice:\n{o}");
    let pooled = ids(&o, "extra_m_ids");
    assert!(
        sections.iter().flatten().all(|m| !pooled.contains(m)),
        "a pooled M has a section:\n{o}"
    );
    assert!(!o.stderr.contains("did not answer"), "{o}");
    assert_eq!(o.stderr.matches("relay_busy_function").count(), 2, "{o}");
}

fn two_faults(level: &str) -> Outcome {
    let o = run_signalled(
        BIN,
        &["crash_two_faults_at_once"],
        &[("GORT_TRACEBACK", level), ("GORT_MAXPROCS", "2")],
        None,
        crash_limit(),
    );
    assert_eq!(
        o.stderr.matches("fatal signal").count(),
        1,
        "exactly one summary line:\n{o}"
    );
    assert_eq!(
        o.stderr.matches("\nmodules:\n").count(),
        1,
        "exactly one module list:\n{o}"
    );
    // No interleaving: every line is one of the dump's line kinds.
    for l in o.stderr.lines() {
        let known = l.is_empty()
            || l.starts_with('\t')
            || l.starts_with("fatal signal ")
            || l.starts_with("SIG")
            || l.starts_with("PC=0x")
            || l.starts_with("goroutine ")
            || l.starts_with("created by ")
            || l.starts_with("module")
            || l.starts_with("-----")
            || l.starts_with('(')
            || l.starts_with('[')
            || l.ends_with("(...)")
            || l.starts_with("...")
            || l.split_whitespace()
                .nth(1)
                .is_some_and(|v| v.starts_with("0x"))
            // qemu-user's own note when the guest dies by a signal.
            || (under_qemu() && l.starts_with("qemu: "));
        assert!(known, "garbled line {l:?}:\n{o}");
    }
    let took = o.since("crash_at_ns");
    assert!(
        took < scaled(Duration::from_millis(900)),
        "the process took {took:?} to end:\n{o}"
    );
    o
}

#[test]
fn two_ms_faulting_at_once_give_one_coherent_dump() {
    let o = two_faults("single");
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("fault_together_function"), "{o}");
}

#[test]
fn two_ms_faulting_at_once_in_crash_mode_relay_without_waiting() {
    let o = two_faults("crash");
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    assert!(!o.stderr.contains("did not answer"), "{o}");
    // Both Ms have a section: the second either faulted too (it answers
    // the relay from its own handler, with its own signal) or was still
    // spinning (it answers the relay's SIGQUIT).
    assert_eq!(
        o.stderr.matches("fault_together_function").count(),
        2,
        "{o}"
    );
    let sections = o.section_ms();
    assert!(sections.len() >= 2, "{o}");
}
