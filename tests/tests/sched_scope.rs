//! `runtime::scope`: Gs that borrow from the caller.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Symptom: `scope` returns before a scoped G finished (the borrow would
/// dangle), or the results are not what the Gs wrote.
#[test]
fn scoped_gs_borrow_and_are_all_joined() {
    let mut slots = vec![0u64; 64];
    let done = AtomicUsize::new(0);
    let base = 10u64;
    runtime::scope(|s| {
        for (i, slot) in slots.iter_mut().enumerate() {
            let done = &done;
            s.go(move || {
                runtime::sleep(Duration::from_millis((i % 7) as u64));
                *slot = base + i as u64;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(done.load(Ordering::SeqCst), 64);
    assert!(slots.iter().enumerate().all(|(i, v)| *v == base + i as u64));
}

/// Symptom: a scoped handle's join returns the wrong value or the scope's
/// own value is lost.
#[test]
fn join_returns_values_and_scope_returns_its_own() {
    let words = ["g", "m", "p"];
    let r = runtime::scope(|s| {
        let hs: Vec<_> = words.iter().map(|w| s.go(move || w.repeat(2))).collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    });
    assert_eq!(r, "gg,mm,pp");
}

/// Symptom: a panic in a scoped G nobody joined is silently lost; the
/// other Gs are not waited for.
#[test]
fn an_unjoined_panic_reaches_the_caller_after_all_gs_finish() {
    let finished = AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime::scope(|s| {
            s.go(|| panic!("scoped boom"));
            s.go(|| {
                runtime::sleep(Duration::from_millis(50));
                finished.fetch_add(1, Ordering::SeqCst);
            });
        })
    }));
    let e = r.unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"a scoped G panicked"));
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

/// A joined panic is the joiner's business: the scope does not panic.
#[test]
fn a_joined_panic_is_handled_by_the_joiner() {
    let r = runtime::scope(|s| s.go(|| panic!("mine")).join().is_err());
    assert!(r);
}

/// Symptom: the scope's own panic skips the wait (scoped Gs outlive the
/// borrow) or is replaced by another payload.
#[test]
fn the_scope_functions_panic_is_propagated_after_the_wait() {
    let finished = AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime::scope(|s| {
            s.go(|| {
                runtime::sleep(Duration::from_millis(50));
                finished.fetch_add(1, Ordering::SeqCst);
            });
            panic!("outer");
        })
    }));
    assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"outer"));
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

/// Scopes nest and work from inside a G.
#[test]
fn a_scope_inside_a_g_nests() {
    let h = runtime::go(|| {
        let mut total = 0u64;
        runtime::scope(|s| {
            let t = &mut total;
            s.go(move || {
                let mut parts = [0u64; 8];
                runtime::scope(|s2| {
                    for (i, p) in parts.iter_mut().enumerate() {
                        s2.go(move || *p = i as u64);
                    }
                });
                *t = parts.iter().sum();
            });
        });
        total
    });
    assert_eq!(h.join().unwrap(), 28);
}
