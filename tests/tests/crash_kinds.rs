//! One test per kind of fatal signal, the traceback levels and their
//! aliases, many parked Gs, and chaining to a handler installed before
//! gort. Each runs a scenario in a child process with a hard time limit and
//! asserts on the dump and on how the process ended.

use tests::{Outcome, crash_limit, run};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn go(name: &str, env: &[(&str, &str)]) -> Outcome {
    run(BIN, &[name], env, crash_limit())
}

/// The summary line.
fn first(o: &Outcome) -> &str {
    o.stderr
        .lines()
        .find(|l| l.starts_with("fatal signal"))
        .unwrap_or_else(|| panic!("no summary line:\n{o}"))
}

#[test]
fn a_wild_write_prints_the_address_it_hit() {
    let o = go("crash_wild_write", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    let l = first(&o);
    assert!(
        l.starts_with("fatal signal SIGSEGV: segmentation violation code=")
            && l.contains(" addr=0x12345678 "),
        "{l}"
    );
    assert!(o.stderr.contains("addr=0x12345678\n"), "Go's PC= line: {o}");
    assert!(o.stderr.contains("wild_write_function"), "{o}");
}

#[test]
fn abort_in_a_g_is_reported_with_its_stack() {
    let o = go("crash_abort", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(first(&o).starts_with("fatal signal SIGABRT: abort"), "{o}");
    // Through libc's abort and raise, back to the G's code. Not on i686:
    // its walker follows frame pointers only, and glibc's abort has none.
    if !cfg!(target_arch = "x86") {
        assert!(o.stderr.contains("call_abort_function"), "{o}");
    }
    assert!(o.stderr.contains("created by "), "{o}");
}

#[test]
fn sigbus_past_the_end_of_a_mapped_file_is_reported() {
    let o = go("crash_sigbus", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        first(&o).starts_with("fatal signal SIGBUS: bus error code=2(BUS_ADRERR) addr=0x"),
        "{o}"
    );
    assert!(o.stderr.contains("touch_past_eof_function"), "{o}");
}

#[test]
fn an_illegal_instruction_is_reported() {
    let o = go("crash_sigill", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    let l = first(&o);
    assert!(
        l.starts_with("fatal signal SIGILL: illegal instruction code="),
        "{l}"
    );
    // The fault address of SIGILL is the instruction itself.
    let pc = l.split(" pc=").nth(1).and_then(|v| v.split(' ').next());
    let addr = l.split(" addr=").nth(1).and_then(|v| v.split(' ').next());
    assert!(pc.is_some() && pc == addr, "{l}");
    assert!(o.stderr.contains("illegal_instruction"), "{o}");
}

/// What a level printed, from the `crash_levels` scenario's dump (three
/// parked Gs, one G faulting).
#[derive(Debug, PartialEq)]
struct Shape {
    exit: (Option<i32>, Option<i32>),
    faulting_g: bool,
    other_gs: bool,
    runtime_frames: bool,
    relay: bool,
}

fn shape(level: &str) -> (Shape, Outcome) {
    let o = go("crash_levels", &[("GORT_TRACEBACK", level)]);
    assert!(o.stderr.contains("fatal signal SIGSEGV"), "{level}: {o}");
    let s = Shape {
        exit: (o.code, o.signal),
        faulting_g: o.stderr.contains(" name: faulty]\ngoroutine ")
            && o.stderr.contains(" [running]:\n")
            && o.stderr.contains("crash_here_with_null_read"),
        // (Grouping is checked by the thousand-G test: with runtime frames
        // shown, Gs that parked through different runtime paths rightly
        // form different groups.)
        other_gs: o.stderr.contains("level_parked_function"),
        runtime_frames: o
            .stderr
            .lines()
            .any(|l| l.starts_with("scheduler::") || l.starts_with("arch::")),
        relay: o.stderr.contains("\n-----\n"),
    };
    (s, o)
}

fn check_level(levels: &[&str], want: Shape) {
    for l in levels {
        let (got, o) = shape(l);
        assert_eq!(got, want, "GORT_TRACEBACK={l}:\n{o}");
    }
}

#[test]
fn level_none_and_0_print_the_signal_only() {
    check_level(
        &["none", "0"],
        Shape {
            exit: (Some(2), None),
            faulting_g: false,
            other_gs: false,
            runtime_frames: false,
            relay: false,
        },
    );
}

#[test]
fn level_single_and_1_print_only_the_faulting_g() {
    check_level(
        &["single", "1"],
        Shape {
            exit: (Some(2), None),
            faulting_g: true,
            other_gs: false,
            runtime_frames: false,
            relay: false,
        },
    );
}

#[test]
fn level_all_and_2_print_the_other_gs_too() {
    check_level(
        &["all", "2"],
        Shape {
            exit: (Some(2), None),
            faulting_g: true,
            other_gs: true,
            runtime_frames: false,
            relay: false,
        },
    );
}

#[test]
fn level_system_adds_the_runtimes_frames() {
    check_level(
        &["system"],
        Shape {
            exit: (Some(2), None),
            faulting_g: true,
            other_gs: true,
            runtime_frames: true,
            relay: false,
        },
    );
}

#[test]
fn level_crash_relays_and_aborts() {
    check_level(
        &["crash"],
        Shape {
            exit: (None, Some(libc::SIGABRT)),
            faulting_g: true,
            other_gs: true,
            runtime_frames: true,
            relay: true,
        },
    );
}

#[test]
fn a_thousand_parked_gs_are_grouped_with_wait_reasons_and_spawn_sites() {
    let o = go("crash_many_parked", &[("GORT_TRACEBACK", "all")]);
    assert_eq!(o.code, Some(2), "{o}");
    let group = |func: &str, reason: &str, more: &str| {
        let at = o
            .stderr
            .find(func)
            .unwrap_or_else(|| panic!("{func} not in the dump:\n{o}"));
        // The group's header and count precede its first frame.
        let head = &o.stderr[..at];
        let header = head.rfind("\ngoroutine ").expect("a header");
        let block = &o.stderr[header..];
        let block = &block[..block[1..].find("\n\n").map_or(block.len(), |e| e + 1)];
        assert!(block.contains(reason), "{func}: no {reason}:\n{block}");
        // The group's count follows the block, between goroutines.
        let after = &o.stderr[header + block.len()..];
        let next = after.trim_start_matches('\n').lines().next().unwrap_or("");
        assert!(
            next.starts_with(more),
            "{func}: not grouped:\n{block}\n{next}"
        );
        assert!(
            block.contains("created by "),
            "{func}: no spawn site:\n{block}"
        );
        // The function's own frame, once for the whole group (debug
        // builds add shim frames that mention it, e.g. `call_once`).
        let frames = o
            .stderr
            .lines()
            .filter(|l| {
                l.strip_suffix("(...)")
                    .is_some_and(|name| name.ends_with(func))
            })
            .count();
        assert_eq!(frames, 1, "{func} printed twice:\n{o}");
    };
    group(
        "many_sleeper_function",
        "[sleep",
        "[599 more goroutines with the stack of goroutine ",
    );
    group(
        "many_waiter_function",
        "[sync.WaitGroup.Wait",
        "[399 more goroutines with the stack of goroutine ",
    );
    // Short: a thousand Gs in two groups, not a thousand stacks.
    assert!(o.stderr.lines().count() < 400, "{o}");
}

#[test]
fn the_handler_installed_before_gort_runs_after_the_dump() {
    let o = go("crash_chain_previous", &[]);
    assert_eq!(o.code, Some(2), "{o}");
    let dump_end = o
        .stderr
        .find("\nmodules:\n")
        .unwrap_or_else(|| panic!("no module list:\n{o}"));
    let prev = o
        .stderr
        .find("previous SIGSEGV handler ran: si_addr=0x0000000012345678")
        .unwrap_or_else(|| {
            panic!("the previous handler did not run (or got a wrong siginfo):\n{o}")
        });
    assert!(
        prev > dump_end,
        "the previous handler ran before the dump:\n{o}"
    );
    assert!(o.stderr.contains("wild_write_function"), "{o}");
}
