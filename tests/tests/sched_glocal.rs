//! `g_local!`: values that follow their G across Ms.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

runtime::g_local! {
    static ID: Cell<u64> = Cell::new(0);
    static TRAIL: RefCell<Vec<u64>> = RefCell::new(Vec::new());
}

/// Symptom: after a park the G finds another G's value (the M's), as with
/// `thread_local!`.
#[test]
fn each_g_keeps_its_value_across_parks_and_ms() {
    let gs: Vec<_> = (1..=200u64)
        .map(|i| {
            runtime::go(move || {
                ID.with(|v| v.set(i));
                let mut tids = std::collections::HashSet::new();
                for k in 0..20 {
                    tids.insert(std::thread::current().id());
                    TRAIL.with_borrow_mut(|t| t.push(k));
                    runtime::sleep(Duration::from_micros(100));
                    assert_eq!(ID.with(Cell::get), i, "G {i} saw another G's value");
                }
                (TRAIL.with_borrow(Vec::len), tids.len())
            })
        })
        .collect();
    let mut moved = 0;
    for g in gs {
        let (len, threads) = g.join().unwrap();
        assert_eq!(len, 20);
        moved += usize::from(threads > 1);
    }
    // Not asserted (it depends on scheduling), but the test is about this.
    eprintln!("{moved} of 200 Gs ran on more than one thread");
}

struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

runtime::g_local! {
    static GUARD: RefCell<Option<Dropped>> = RefCell::new(None);
}

/// Symptom: a G's values leak (never dropped) or survive into the next G
/// that reuses the G struct.
#[test]
fn values_are_dropped_when_the_g_ends_and_not_inherited() {
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let d = drops.clone();
        runtime::go(move || {
            assert!(GUARD.with_borrow(Option::is_none), "inherited a value");
            GUARD.set(Some(Dropped(d)));
        })
        .join()
        .unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 50);
}

/// A plain thread has a value of its own, separate from every G's.
#[test]
fn a_plain_thread_has_its_own_value() {
    ID.with(|v| v.set(99));
    runtime::go(|| assert_eq!(ID.with(Cell::get), 0))
        .join()
        .unwrap();
    assert_eq!(ID.with(Cell::get), 99);
}

/// Debug builds stop a G that parks with a `ThreadBound` live (child
/// process: the check is a fatal error); a locked G may.
#[test]
fn a_thread_bound_value_across_a_park_is_caught_in_debug_builds() {
    let bin = env!("CARGO_BIN_EXE_scenarios");
    let locked = tests::scenario(bin, "eco_thread_bound_locked", &[], Duration::from_secs(60));
    locked.assert_success();
    let o = tests::scenario(bin, "eco_thread_bound_park", &[], Duration::from_secs(60));
    if cfg!(debug_assertions) {
        // gort's fatal errors exit with status 2 after the dump, as Go's.
        assert!(o.code == Some(2) || o.signal == Some(libc::SIGABRT), "{o}");
        assert!(
            o.stderr
                .contains("parks while a thread-bound value marked at")
                && o.stderr.contains("eco_scenarios.rs"),
            "{o}"
        );
        assert!(
            o.stderr
                .contains("fatal error: park: a thread-bound value is live across a park"),
            "{o}"
        );
    } else {
        // Release builds do not check: the scenario runs to its end.
        o.assert_success();
    }
}
