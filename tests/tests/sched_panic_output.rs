//! A G's panic message reaches stderr under `cargo test`'s output capture.
//!
//! Symptom guarded against: the runtime's threads inherit the capture of
//! whichever test started the runtime, so a G's panic message, printed
//! with `eprint!`, went into that test's buffer — shown only if that test
//! failed, and lost if it had already finished.

use std::time::Duration;

/// Run in a child test process *without* `--nocapture`.
#[test]
fn g_panic_child() {
    if std::env::var_os("GORT_PANIC_OUTPUT_CHILD").is_none() {
        return;
    }
    let err = runtime::go(|| panic!("the message from the G"))
        .join()
        .unwrap_err();
    assert!(err.downcast_ref::<&str>().is_some());
}

/// A G panicking in a later test, after the test that started the
/// runtime ended: its message must not go to that test's buffer.

#[test]
fn g_panic_child_second() {
    if std::env::var_os("GORT_PANIC_OUTPUT_CHILD").is_none() {
        return;
    }
    std::thread::sleep(Duration::from_millis(50));
    let _ = runtime::go(|| panic!("a second message")).join();
}

#[test]
fn a_gs_panic_message_is_not_swallowed_by_the_test_capture() {
    let exe = std::env::current_exe().unwrap();
    let o = tests::run(
        exe.to_str().unwrap(),
        &["g_panic_child", "--test-threads=1"],
        &[("GORT_PANIC_OUTPUT_CHILD", "1")],
        tests::crash_limit(),
    );
    assert_eq!(o.code, Some(0), "{o}");
    for msg in ["the message from the G", "a second message"] {
        assert!(
            o.stderr.contains(msg) && o.stderr.contains("goroutine "),
            "{msg:?} missing from stderr:\n{o}"
        );
    }
}
