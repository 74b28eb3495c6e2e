//! Unit tests of the extra-M pool beside it: `needm`/`dropm` keep the
//! counters the crash relay reads exact (`mcount - extra_m_count` is the
//! number of Ms with a thread), always leave a spare, refuse misuse with
//! the right error, give a foreign thread's M back when the thread exits
//! without `dropm`, and survive many foreign threads at once.
//!
//! The counters are process-wide, so these tests take [`SERIAL`] and
//! compare before and after; other unit tests of this crate never bind
//! extra Ms.

use super::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `(mcount, extra_m_count, extra_m_in_use)`.
fn counts() -> (usize, usize, usize) {
    let (m, extra) = counts_consistent();
    (m, extra, extra_m_in_use())
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Symptom guarded: `needm` and `dropm` leave the counters off by one (the
/// crash relay then waits for a thread that does not exist, Go's 2017 bug)
/// or leave the list without a spare.
#[test]
fn needm_and_dropm_keep_the_counters_exact_and_a_spare() {
    let _s = serial();
    ensure_spare();
    let before = counts();
    assert!(before.1 >= 1, "a spare before: {before:?}");
    let (during, after) = std::thread::spawn(|| {
        let m = needm(false).expect("needm on a foreign thread");
        assert!(m.extra);
        assert!(core::ptr::eq(current_m().unwrap(), m));
        let during = counts();
        dropm().expect("dropm");
        assert!(current_m().is_none());
        (during, counts())
    })
    .join()
    .unwrap();
    // During: one more in use; the spare taken was replaced (one more M).
    assert_eq!(during.2, before.2 + 1, "{before:?} -> {during:?}");
    assert!(during.1 >= 1, "no spare left while bound: {during:?}");
    assert_eq!(
        during.0 - during.1,
        before.0 - before.1 + 1,
        "threads with an M: {before:?} -> {during:?}"
    );
    // After: back on the list, no thread of its own.
    assert_eq!(after.2, before.2);
    assert_eq!(
        after.0 - after.1,
        before.0 - before.1,
        "{before:?} -> {after:?}"
    );
}

/// Symptom guarded: misuse corrupts the list (an M pushed twice, a runtime
/// M pushed onto it) instead of returning an error.
#[test]
fn misuse_is_refused_with_the_right_error() {
    let _s = serial();
    std::thread::spawn(|| {
        assert_eq!(dropm(), Err(DropmError::NoM));
        let before = counts();
        needm(false).unwrap();
        assert_eq!(needm(false).err(), Some(NeedmError::AlreadyBound));
        assert_eq!(counts().2, before.2 + 1, "the refused needm took nothing");
        dropm().unwrap();
        assert_eq!(dropm(), Err(DropmError::NoM), "a second dropm");
    })
    .join()
    .unwrap();
    // From a callback on a foreign thread: its M is busy.
    let r = std::thread::spawn(|| crate::callback(dropm))
        .join()
        .unwrap();
    assert_eq!(r.ok(), Some(Err(DropmError::InCallback)));
}

/// Symptom guarded: a foreign thread that exits without `dropm` keeps its M
/// bound for ever (one leaked M per short-lived thread, and a crash relay
/// waiting for a thread that is gone).
#[test]
fn a_thread_exiting_without_dropm_gives_its_m_back() {
    let _s = serial();
    ensure_spare();
    let before = counts();
    std::thread::spawn(|| {
        needm(false).unwrap();
    })
    .join()
    .unwrap();
    // The key destructor runs as the thread exits, before join returns,
    // but give a slow machine room.
    eventually("the exited thread's M is back on the list", || {
        let now = counts();
        now.2 == before.2 && now.0 - now.1 == before.0 - before.1
    });
}

/// Symptom guarded: the list's spin lock or its counters break under many
/// foreign threads binding and dropping at once (a lost M, a count off).
#[test]
fn many_foreign_threads_at_once() {
    let _s = serial();
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    ensure_spare();
    let before = counts();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..ROUNDS {
                    let m = needm(false).unwrap();
                    assert!(core::ptr::eq(current_m().unwrap(), m));
                    dropm().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let after = counts();
    assert_eq!(after.2, before.2, "{before:?} -> {after:?}");
    assert_eq!(
        after.0 - after.1,
        before.0 - before.1,
        "{before:?} -> {after:?}"
    );
    // Each thread holds one M at a time; a needm that finds the list empty
    // makes one, and one that takes the last makes the next spare, so racing
    // threads may each make two. A lost M would grow with the 200 rounds.
    assert!(
        after.1 <= before.1 + 2 * THREADS + 1,
        "at most two new extra Ms per thread at once (and a spare): {before:?} -> {after:?}"
    );
}

/// Symptom guarded: `needm` inside a signal handler allocates when the list
/// is empty, instead of failing (`NoSpareInSignal`) and asking for a spare
/// that the next ordinary `needm` makes.
#[test]
fn needm_in_a_handler_takes_only_spares_and_asks_for_more() {
    let _s = serial();
    ensure_spare();
    let before = counts();
    // Bind threads the way a handler would until the list runs dry.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let stop_rx = std::sync::Arc::new(Mutex::new(stop_rx));
    let mut bound = Vec::new();
    loop {
        let (tx, stop_rx) = (tx.clone(), stop_rx.clone());
        let t = std::thread::spawn(move || {
            let r = needm(true);
            let ok = r.is_ok();
            tx.send(r.map(|_| ())).unwrap();
            if ok {
                // Stay bound until told, then give it back.
                let _ = stop_rx.lock().unwrap().recv();
                dropm().unwrap();
            }
        });
        let r = rx.recv().unwrap();
        bound.push(t);
        match r {
            Ok(()) => assert!(bound.len() <= before.1 + 1, "more spares than counted"),
            Err(e) => {
                assert_eq!(e, NeedmError::NoSpareInSignal);
                break;
            }
        }
    }
    assert_eq!(
        bound.len() - 1,
        before.1,
        "every spare was taken, then a refusal"
    );
    assert_eq!(extra_m_count(), 0);
    assert!(
        NEED_EXTRA_M.load(Ordering::Acquire),
        "the handler asked for a spare"
    );
    // An ordinary caller makes the spare it asked for.
    ensure_spare_if_needed();
    assert!(extra_m_count() >= 1, "no spare made");
    for _ in 1..bound.len() {
        stop_tx.send(()).unwrap();
    }
    for t in bound {
        t.join().unwrap();
    }
    let after = counts();
    assert_eq!(after.2, before.2);
    assert_eq!(
        after.0 - after.1,
        before.0 - before.1,
        "{before:?} -> {after:?}"
    );
}
