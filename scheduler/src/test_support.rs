//! Support shared by the scheduler's unit tests (the tests of other crates
//! share `testkit`): starting a G on the real runtime from a test, and the
//! time a test waits for something that must happen before it fails.

use crate::g::Entry;
use crate::spawn::SpawnOptions;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a test waits for a party to arrive or finish (a loaded 2-CPU
/// machine, a debug build, qemu-user) before it fails.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// A G running a closure once.
struct Run(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Entry for Run {
    fn run(&self) {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f();
        }
    }
}

/// Starts a G running `f` (starting the runtime on first use). `f` must
/// not panic (a G's entry must not unwind): report through a channel and
/// assert on the test thread.
#[track_caller]
pub(crate) fn go(f: impl FnOnce() + Send + 'static) {
    let run = Arc::new(Run(Mutex::new(Some(Box::new(f)))));
    let opts = SpawnOptions {
        name: Some(Arc::from("unit-test")),
        stack_size: None,
        site: core::panic::Location::caller(),
    };
    crate::spawn(run, opts).expect("spawn a G");
}
