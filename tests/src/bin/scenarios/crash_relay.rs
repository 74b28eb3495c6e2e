//! Crash scenarios about who dumps: the relay in crash mode, plain C
//! threads, and several threads dying at once. The tests count the dump's
//! sections (one `PC=… m=N` line per M) against the M counts each scenario
//! prints before the crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

unsafe extern "C" {
    fn c_start_idle_threads(n: i32, out: *mut std::ffi::c_long) -> i32;
}

/// `CLOCK_MONOTONIC` now, in ns (the clock the test harness reads when
/// the child ends: the difference is the crash's latency).
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Prints `key=<CLOCK_MONOTONIC ns>` and flushes it (stdout is a pipe: a
/// crash would lose a buffered line).
pub(crate) fn print_mono(key: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{key}={}", mono_ns()).ok();
    out.flush().ok();
}

/// Prints `extra_m_ids=a,b,…`: the Ms on the extra list (no OS thread).
pub(crate) fn print_extra_m_ids() {
    let ids: Vec<String> = scheduler::m::ALLMS
        .iter()
        .filter(|m| m.status() == scheduler::m::MStatus::Extra)
        .map(|m| m.id.to_string())
        .collect();
    println!("extra_m_ids={}", ids.join(","));
}

#[inline(never)]
fn relay_busy_function(stop: &AtomicUsize) {
    // Not `== 0` as in `busy_loop_function`: identical bodies would be
    // folded into one symbol in release builds.
    while stop.load(Ordering::Relaxed) != usize::MAX {
        std::hint::spin_loop();
    }
}

/// Symptom (the gap Go's 2017 fix left open): with idle plain C threads
/// in the process, the SIGQUIT or the crash relay lands on a C thread, which
/// dumps (or is counted) in place of a runtime M, so an M's stack is
/// missing from the dump.
pub fn idle_c_threads() {
    let mut tids = [0 as std::ffi::c_long; 4];
    // SAFETY: the fixture fills 4 longs.
    let rc = unsafe { c_start_idle_threads(4, tids.as_mut_ptr()) };
    assert_eq!(rc, 0, "c_start_idle_threads");
    let stop = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let (stop, started) = (stop.clone(), started.clone());
        runtime::go(move || {
            started.fetch_add(1, Ordering::SeqCst);
            relay_busy_function(&stop);
        });
    }
    while started.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the Ms settle (a spinning M goes idle) before counting.
    std::thread::sleep(Duration::from_millis(100));
    let t: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
    println!("c_tids={}", t.join(","));
    let s = runtime::stats();
    println!("mcount={}", s.mcount);
    println!("extra_m_count={}", s.extra_m_count);
    print_extra_m_ids();
    println!("ready");
    std::thread::sleep(Duration::from_secs(30));
}

#[inline(never)]
fn fault_together_function(ready: &AtomicUsize) -> u8 {
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < 2 {
        std::hint::spin_loop();
    }
    let v = crate::crash_scenarios::crash_here_with_null_read();
    // Keeps the call from being a tail call, which would drop this frame.
    std::hint::black_box(v)
}

/// Symptom: two Ms that fault at the same moment print two interleaved
/// dumps, or the second one hangs the process (in crash mode: the relay
/// waits for an M whose signals are blocked in its own handler).
pub fn two_faults_at_once() {
    let ready = Arc::new(AtomicUsize::new(0));
    // The clock starts before the spawns: the faults may follow them
    // within microseconds.
    print_mono("crash_at_ns");
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            runtime::go(move || fault_together_function(&ready))
        })
        .collect();
    // Both Gs run before either faults (GORT_MAXPROCS=2).
    for h in hs {
        h.join().ok();
    }
}
