//! `runtime::process`: child processes whose waits and pipes park Gs.

use runtime::process::Command;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Symptom: `output` blocks its M, or loses what the child wrote to one
/// pipe while we read the other.
#[test]
fn output_captures_stdout_and_stderr() {
    let h = runtime::go(|| {
        Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .unwrap()
    });
    let o = h.join().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
}

/// A child that writes more to stderr than a pipe holds before it writes
/// stdout: reading only stdout first would deadlock.
#[test]
fn output_does_not_deadlock_on_a_full_stderr_pipe() {
    let o = runtime::go(|| {
        Command::new("sh")
            .args(["-c", "head -c 300000 /dev/zero >&2; echo done"])
            .output()
            .unwrap()
    })
    .join()
    .unwrap();
    assert!(o.status.success());
    assert_eq!(o.stderr.len(), 300_000);
    assert_eq!(o.stdout, b"done\n");
}

/// Piped stdin/stdout through `cat`, from Gs, with one P: the writer and
/// reader park instead of blocking the only M.
#[test]
fn piped_stdio_parks_gs() {
    let o = tests::scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "eco_process_pipes_one_p",
        &[("GORT_MAXPROCS", "1")],
        Duration::from_secs(60),
    );
    o.assert_success();
    assert_eq!(o.value("echoed"), Some("1048576"), "{o}");
    assert_eq!(o.value("status"), Some("0"), "{o}");
}

/// Waiting many children at once holds no thread per child.
#[test]
fn many_children_waited_from_gs() {
    let start = Instant::now();
    let hs: Vec<_> = (0..20)
        .map(|i| {
            runtime::go(move || {
                let st = Command::new("sh")
                    .args(["-c", &format!("sleep 0.2; exit {}", i % 4)])
                    .status()
                    .unwrap();
                st.code()
            })
        })
        .collect();
    let codes: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(codes, (0..20).map(|i| Some(i % 4)).collect::<Vec<_>>());
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(
        runtime::stats().threaded_ms() < 20,
        "{:?}",
        runtime::stats()
    );
}

/// Symptom: a killed child is not reaped, or kill on a finished child errs.
#[test]
fn kill_and_wait() {
    let mut c = Command::new("sleep").arg("100").spawn().unwrap();
    let t = Instant::now();
    c.kill().unwrap();
    let st = runtime::go(move || {
        let st = c.wait().unwrap();
        c.kill().unwrap(); // already reaped: no error, as std
        st
    })
    .join()
    .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert!(t.elapsed() < Duration::from_secs(20));
}

/// A signal other than SIGKILL, and bad signal numbers.
#[test]
fn signal_a_child() {
    let mut c = Command::new("sleep").arg("100").spawn().unwrap();
    assert_eq!(
        c.signal(100_000).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    c.signal(libc::SIGTERM).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
}

/// The pidfd-less fallback (older kernels): `GORT_PIDFD=0` in a child.
#[test]
fn the_fallback_without_pidfd_waits_too() {
    let o = tests::scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "eco_process_pipes_one_p",
        &[("GORT_MAXPROCS", "1"), ("GORT_PIDFD", "0")],
        Duration::from_secs(60),
    );
    o.assert_success();
    assert_eq!(o.value("status"), Some("0"), "{o}");
}

/// Symptom: a child dropped without `wait` stays a zombie.
#[test]
fn a_dropped_child_is_reaped() {
    let o = tests::scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "eco_process_no_zombie",
        &[],
        Duration::from_secs(60),
    );
    o.assert_success();
    assert_eq!(o.value("zombies"), Some("0"), "{o}");
}

/// A program that does not exist: an error, nothing started. (Under
/// qemu-user the emulated exec fails after the fork: the child exits with
/// an error status instead.)
#[test]
fn a_missing_program_is_an_error() {
    match Command::new("/nonexistent/gort-no-such-program").spawn() {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        Ok(mut c) if tests::under_qemu() => assert!(!c.wait().unwrap().success()),
        Ok(c) => panic!("a missing program started: {c:?}"),
    }
}

/// Writing to a child that exits early: an error (EPIPE), not a hang.
#[test]
fn writing_to_an_exited_child_fails() {
    let mut c = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let r = runtime::go(move || {
        runtime::sleep(Duration::from_millis(100));
        let chunk = [0u8; 65536];
        let mut res = Ok(());
        for _ in 0..64 {
            if let Err(e) = stdin.write_all(&chunk) {
                res = Err(e);
                break;
            }
        }
        res
    })
    .join()
    .unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    assert!(c.wait().unwrap().success());
    let mut s = String::new();
    assert!(
        c.stdout
            .as_mut()
            .map(|o| o.read_to_string(&mut s))
            .is_none()
    );
}
