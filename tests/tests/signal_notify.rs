//! `runtime::signal`: OS signals on channels, in child processes.

use runtime::signal::{self, Signal, SignalError};
use std::time::Duration;
use tests::{Outcome, run_signalled, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

fn run(name: &str, signal: Option<i32>) -> Outcome {
    let limit = if under_qemu() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(30)
    };
    run_signalled(BIN, &[name], &[], signal, limit)
}

/// qemu-i386 (7.2) corrupts the state of a thread that takes a signal in
/// some states (docs/porting.md): under it, a child that receives signals
/// died once in three runs in thread start-up ("current thread handle
/// already set"), not in gort. The same tests run natively and under
/// qemu-aarch64.
fn skip_on_qemu_i386() -> bool {
    let skip = under_qemu() && cfg!(target_arch = "x86");
    if skip {
        eprintln!("skipped under qemu-i386: it corrupts threads that take signals");
    }
    skip
}

#[test]
fn ctrl_c_arrives_on_a_channel_and_the_program_exits_cleanly() {
    if skip_on_qemu_i386() {
        return;
    }
    let o = run("eco_signal_ctrl_c", Some(libc::SIGINT));
    o.assert_success();
    let users: Vec<_> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("user="))
        .collect();
    assert!(users.contains(&"user=user defined signal 1"), "{o}");
    assert!(users.contains(&"user=user defined signal 2"), "{o}");
    assert_eq!(o.value("hup"), Some("hangup"), "{o}");
    assert_eq!(o.value("got"), Some("interrupt"), "{o}");
    assert_eq!(o.value("work_done"), Some("1"), "{o}");
    assert_eq!(o.value("clean"), Some("1"), "{o}");
}

#[test]
fn sigterm_arrives_too() {
    if skip_on_qemu_i386() {
        return;
    }
    let o = run("eco_signal_ctrl_c", Some(libc::SIGTERM));
    o.assert_success();
    assert_eq!(o.value("got"), Some("terminated"), "{o}");
}

#[test]
fn stop_gives_the_signal_its_default_action_back() {
    if skip_on_qemu_i386() {
        return;
    }
    let o = run("eco_signal_stop_restores", None);
    assert_eq!(o.value("first"), Some("user defined signal 2"), "{o}");
    assert_eq!(o.signal, Some(libc::SIGUSR2), "{o}");
    assert!(o.value("survived").is_none(), "{o}");
}

#[test]
fn sigquit_still_dumps_every_g() {
    if skip_on_qemu_i386() {
        return;
    }
    let o = run("eco_signal_quit_still_dumps", Some(libc::SIGQUIT));
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("SIGQUIT: quit"), "{o}");
    assert!(o.stderr.contains("[sleep"), "{o}");
}

/// Bad input: crash signals, uncatchable ones and non-numbers are refused
/// with an error that says why, and nothing is installed.
#[test]
fn crash_and_uncatchable_signals_are_refused() {
    let (tx, _rx) = runtime::chan::bounded(1);
    for s in [
        libc::SIGSEGV,
        libc::SIGQUIT,
        libc::SIGABRT,
        libc::SIGKILL,
        libc::SIGSTOP,
    ] {
        let e = signal::notify(&tx, &[Signal::from_raw(s)]).unwrap_err();
        assert!(matches!(e, SignalError::Reserved(n) if n == s), "{e}");
        assert!(e.to_string().contains("cannot be delivered"), "{e}");
    }
    for s in [0, -3, 65, 1000] {
        let e = signal::notify(&tx, &[Signal::from_raw(s)]).unwrap_err();
        assert!(matches!(e, SignalError::OutOfRange(_)), "{e}");
    }
    // A refusal in the middle of a list changes nothing.
    let e = signal::notify(&tx, &[Signal::SIGWINCH, Signal::from_raw(libc::SIGSEGV)]);
    assert!(e.is_err());
    assert!(!signals::notify::enabled(libc::SIGWINCH));
}
