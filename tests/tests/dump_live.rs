//! Live dumps (`runtime::dump`, `gort_dump`): every G's stack while the
//! program keeps running, in the crash dump's format.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether to skip: under qemu-user a live dump's SIGURG, which interrupts
/// a running G and returns into it, is not emulated faithfully (seen on
/// qemu-i386 7.2: the handler's walk stops in the syscall stub, and the
/// interrupted thread later finds no M).
fn skip_under_qemu() -> bool {
    if tests::under_qemu() {
        eprintln!(
            "skipped under qemu-user: signals that interrupt a running G and return into it \
             (the live dump's SIGURG) are not emulated faithfully there"
        );
        return true;
    }
    false
}

fn wait_for_symbols() {
    runtime::go(|| ()).join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(if tests::under_qemu() { 100 } else { 30 });
    while !signals::symbols::is_ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[inline(never)]
fn live_parked_function() {
    runtime::sleep(Duration::from_secs(3600));
    // Not a tail call: a release build would otherwise jump to `sleep` and
    // leave no frame of this function on the parked G's stack.
    std::hint::black_box(3600u64);
}

#[inline(never)]
fn live_busy_function(stop: &AtomicBool, count: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        count.fetch_add(1, Ordering::Relaxed);
        std::hint::spin_loop();
    }
}

/// Symptom: a service cannot see what its Gs do without dying; parked Gs
/// are not grouped as in the crash dump; running Gs show no stack.
#[test]
fn a_live_dump_shows_parked_and_running_gs_and_the_program_runs_on() {
    if skip_under_qemu() {
        return;
    }
    wait_for_symbols();
    for _ in 0..100 {
        runtime::go(live_parked_function);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            runtime::go(move || live_busy_function(&stop, &count))
        })
        .collect();
    while runtime::stats().waiting_gs < 100 || count.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A busy G may be between Ps at the moment of a dump on a loaded
    // machine (then it is parked, not running): a few tries.
    let (mut text, mut stats) = (String::new(), runtime::DumpStats::default());
    for _ in 0..20 {
        let mut out = Vec::new();
        stats = runtime::dump(&mut out).unwrap();
        text = String::from_utf8_lossy(&out).into_owned();
        if stats.asked >= 1 && stats.answered == stats.asked && text.contains("live_busy_function")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(text.contains("live_parked_function"), "{text}");
    assert!(
        text.contains("[99 more goroutines with the stack of goroutine "),
        "{text}"
    );
    assert!(text.contains("[sleep"), "{text}");
    assert!(
        text.contains("created by ")
            && text
                .lines()
                .any(|l| l.starts_with('\t') && l.contains("tests/tests/dump_live.rs:")),
        "{text}"
    );
    assert!(text.contains("modules:"), "{text}");
    // The running Gs were walked by their own Ms.
    assert!(stats.asked >= 1, "{stats:?}");
    if !tests::under_qemu() {
        assert_eq!(stats.answered, stats.asked, "{stats:?}\n{text}");
        assert!(text.contains("live_busy_function"), "{text}");
    }
    // The program runs on.
    let before = count.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(20));
    assert!(count.load(Ordering::Relaxed) > before);
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
}

/// A dump taken from inside a G shows that G itself, running.
#[test]
fn a_dump_from_a_g_shows_the_caller() {
    if skip_under_qemu() {
        return;
    }
    wait_for_symbols();
    let text = runtime::go(|| {
        let mut out = Vec::new();
        runtime::dump(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    })
    .join()
    .unwrap();
    assert!(text.contains("[running"), "{text}");
    assert!(text.contains("a_dump_from_a_g_shows_the_caller"), "{text}");
}

/// The C twin writes to a descriptor and refuses one it cannot write;
/// `runtime::dump_fd` says why.
#[test]
fn the_c_twin_writes_to_a_descriptor_and_refuses_bad_ones() {
    if skip_under_qemu() {
        return;
    }
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd};
    assert_eq!(gort::gort_dump(-1), gort::status::BAD_FD);
    let ro = std::fs::File::open("/proc/self/exe").unwrap();
    assert_eq!(gort::gort_dump(ro.as_raw_fd()), gort::status::BAD_FD);
    let e = runtime::dump_fd(ro.as_fd()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    let (mut r, w) = std::io::pipe().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    });
    assert_eq!(gort::gort_dump(w.as_raw_fd()), gort::status::OK);
    drop(w);
    let text = reader.join().unwrap();
    assert!(
        text.contains("goroutine ") && text.contains("modules:"),
        "{text}"
    );
}
