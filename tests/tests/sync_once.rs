//! `runtime::sync::Once`: one run, concurrent callers wait for it.

use runtime::sync::Once;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn concurrent_callers_run_it_once_and_return_after_it_finished() {
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut hs: Vec<Box<dyn FnOnce() -> usize>> = Vec::new();
    for i in 0..32 {
        let (once, runs, finished) = (once.clone(), runs.clone(), finished.clone());
        let body = move || {
            once.call_once(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                // Long enough for the others to arrive and park.
                runtime::sleep(Duration::from_millis(30));
                finished.store(1, Ordering::SeqCst);
            });
            // Whoever returns, returns after the function finished.
            finished.load(Ordering::SeqCst)
        };
        if i % 8 == 0 {
            let t = std::thread::spawn(body);
            hs.push(Box::new(move || t.join().unwrap()));
        } else {
            let h = runtime::go(body);
            hs.push(Box::new(move || h.join().unwrap()));
        }
    }
    for h in hs {
        assert_eq!(h(), 1, "a caller returned before the first call finished");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(once.is_completed());
}

#[test]
fn a_panicking_call_counts_as_done_as_in_go() {
    let once = Arc::new(Once::new());
    let o2 = once.clone();
    assert!(
        runtime::go(move || o2.call_once(|| panic!("init failed")))
            .join()
            .is_err()
    );
    assert!(once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(!ran);
}
