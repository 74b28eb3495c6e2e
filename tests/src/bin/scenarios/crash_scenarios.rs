//! Crash scenarios: each ends the process; the tests assert on the dump and
//! on how the process ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[inline(never)]
pub(crate) fn crash_here_with_null_read() -> u8 {
    let p = std::hint::black_box(std::ptr::null::<u8>());
    // SAFETY: not safe at all: this scenario's purpose is the fault.
    unsafe { std::ptr::read_volatile(p) }
}

/// Symptom: a segfault in a G dies silently or without the G's stack.
pub fn segv_in_g() {
    let h = runtime::GoBuilder::new()
        .name("faulty")
        .spawn(crash_here_with_null_read)
        .unwrap();
    h.join().ok();
}

#[inline(never)]
fn parked_sleeper_function() {
    runtime::sleep(Duration::from_secs(3600));
    // Keeps the sleep from being a tail call, which would drop this frame.
    std::hint::black_box(());
}

/// Symptom: SIGQUIT from a CI harness shows nothing useful, or every
/// identical G is printed one by one.
pub fn quit_dumps_all() {
    for _ in 0..100 {
        runtime::go(parked_sleeper_function);
    }
    runtime::go(|| runtime::sleep(Duration::from_secs(3600)));
    while runtime::stats().waiting_gs < 101 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(30));
}

#[inline(never)]
fn parked_forever() {
    parked_for(3600);
}

#[inline(never)]
fn parked_for(secs: u64) {
    runtime::sleep(Duration::from_secs(secs));
    std::hint::black_box(());
}

#[inline(never)]
fn spawns_with_a_closure() {
    let _ = runtime::GoBuilder::new()
        .name("closure")
        .spawn(move || parked_for(3600));
}

#[inline(never)]
fn spawns_a_function() {
    let _ = runtime::GoBuilder::new()
        .name("function")
        .spawn(parked_forever);
}

#[inline(never)]
#[rustfmt::skip]
fn spawns_from_a_closure() {
    // One line on purpose: the function, the closure that spawns and the
    // G's own closure all have code on it.
    (0..1).for_each(|_| drop(runtime::GoBuilder::new().name("in_closure").spawn(move || parked_for(3600))));
}

/// Symptom: `created by` names the G's own closure (one level too deep) or
/// the function around the closure that spawned (one level too shallow)
/// instead of the function that called `go`, as Go does.
pub fn created_by_sites() {
    spawns_with_a_closure();
    spawns_a_function();
    spawns_from_a_closure();
    // What is checked is the name, not how early it is ready: wait until
    // the symbolizer has its index (a dump before it waits 50 ms at most
    // for spawn sites, which a loaded machine can exceed in a debug build).
    while runtime::stats().waiting_gs < 3 || !signals::resolve::prepared() {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(30));
}

#[inline(never)]
fn busy_loop_function(stop: &AtomicUsize) {
    while stop.load(Ordering::Relaxed) == 0 {
        std::hint::spin_loop();
    }
}

/// Symptom (Go's TestCrashDumpsAllThreads): with GORT_TRACEBACK=crash a
/// SIGQUIT does not show what every M is running.
pub fn crash_dumps_all_threads() {
    let stop = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (stop, started) = (stop.clone(), started.clone());
        runtime::go(move || {
            started.fetch_add(1, Ordering::SeqCst);
            busy_loop_function(&stop);
        });
    }
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(30));
}

/// Symptom (the seed): with many extra Ms pooled (no thread), a crash in
/// crash mode waits for threads that do not exist.
pub fn seed_extra_ms_then_crash() {
    // 100 foreign threads call in at the same time and exit: their Ms go
    // back to the pool.
    let barrier = Arc::new(std::sync::Barrier::new(100));
    let ts: Vec<_> = (0..100)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                runtime::ffi::needm().unwrap();
                b.wait();
                runtime::ffi::callback(|| ()).unwrap();
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    // The faulting G takes the counts itself, right before the fault, so
    // that no M starts or stops in between (a count taken elsewhere, then
    // the G's timer sleeps, left room for a wake-up to start one more M).
    let go_on = Arc::new(AtomicUsize::new(0));
    let g = go_on.clone();
    let h = runtime::go(move || {
        while g.load(Ordering::Acquire) == 0 {
            runtime::sleep(Duration::from_millis(1));
        }
        let s = runtime::stats();
        println!("extra_m_count={}", s.extra_m_count);
        println!("mcount={}", s.mcount);
        crate::crash_relay::print_extra_m_ids();
        crate::crash_relay::print_mono("crash_at_ns");
        crash_here_with_null_read()
    });
    std::thread::sleep(Duration::from_millis(50));
    go_on.store(1, Ordering::Release);
    h.join().ok();
}

#[inline(never)]
#[allow(unconditional_recursion)] // the overflow is the point
pub(crate) fn recurse_forever(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 32]);
    recurse_forever(n + 1) + pad[3]
}

/// Symptom: a G that overflows its stack dies with a bare SIGSEGV.
pub fn g_stack_overflow() {
    runtime::GoBuilder::new()
        .stack_size(64 * 1024)
        .spawn(|| recurse_forever(0))
        .unwrap()
        .join()
        .ok();
}

/// Symptom: gort's handler hides std's message for an OS thread overflow.
pub fn thread_stack_overflow() {
    runtime::go(|| ()).join().unwrap();
    let t = std::thread::Builder::new()
        .name("deep".into())
        .stack_size(128 * 1024)
        .spawn(|| recurse_forever(0))
        .unwrap();
    t.join().ok();
}

/// Symptom: an unhandled panic in crash mode only reaches the joiner.
pub fn panic_in_crash_mode() {
    runtime::go(|| -> () { panic!("unhandled in crash mode") })
        .join()
        .ok();
    println!("unreachable: the panic did not end the process");
}

/// Symptom: a fault on a thread the runtime never saw is lost.
pub fn segv_on_plain_thread() {
    runtime::go(|| ()).join().unwrap();
    std::thread::spawn(crash_here_with_null_read).join().ok();
}

/// Symptom: another library replaces gort's handler without SA_ONSTACK and
/// nobody notices.
pub fn handler_without_onstack() {
    runtime::go(|| ()).join().unwrap();
    extern "C" fn other(_: libc::c_int) {}
    // SAFETY: installing a plain handler; this scenario checks the report.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = other as *const () as usize;
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
    // New Ms check the handlers when they start, at most every 100 ms:
    // let the look of the Ms started above age, then start more.
    std::thread::sleep(Duration::from_millis(150));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            runtime::go(|| {
                runtime::lock_os_thread();
                runtime::sleep(Duration::from_millis(20));
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("done");
}

/// Symptom: every G waits on something no one will ever do and the
/// process hangs silently forever.
pub fn deadlock() {
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let wg = wg.clone();
            runtime::go(move || wg.wait())
        })
        .collect();
    // Nobody calls done(): main joins a G that can never finish.
    for h in hs {
        h.join().unwrap();
    }
    println!("unreachable");
}

/// Symptom: deadlock detection fires while a plain thread could still
/// wake the Gs.
pub fn not_a_deadlock() {
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    let h = runtime::go(move || w2.wait());
    let w3 = wg.clone();
    // Another plain thread finishes the group later.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        w3.done();
    });
    h.join().unwrap();
    println!("finished");
}

/// Symptom: a plain thread that could have woken the Gs exits long after
/// the runtime went idle, without waking them, and the process hangs with
/// nothing left to report the deadlock.
pub fn deadlock_after_thread_exits() {
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    let h = runtime::go(move || w2.wait());
    // Holds no handle on the group: it only keeps the check from being
    // sure until it exits, well after sysmon's quiet rounds are over.
    std::thread::spawn(|| std::thread::sleep(Duration::from_millis(1500)));
    h.join().unwrap();
    println!("unreachable");
}

#[inline(never)]
fn divide_by(d: u32) -> u32 {
    let n = std::hint::black_box(100u32);
    // A hardware division (checked division would panic instead).
    let q: u32;
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    // SAFETY: none: dividing by zero raises SIGFPE, which is the point.
    unsafe {
        core::arch::asm!("div {d:e}", d = in(reg) d, inout("eax") n => q, inout("edx") 0u32 => _);
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    {
        // aarch64 division by zero does not trap: raise SIGFPE like a trap.
        // SAFETY: raising a signal at ourselves.
        unsafe { libc::raise(libc::SIGFPE) };
        q = n / d.max(1);
    }
    q
}

/// Symptom: an arithmetic trap is reported as something else, or not.
pub fn sigfpe() {
    runtime::go(|| divide_by(std::hint::black_box(0)))
        .join()
        .ok();
}

/// Symptom: a crash in the very first G, at start-up, before the symbol
/// table is built, prints `?` for every frame. Nothing waits for symbols:
/// the first use of the runtime is the faulting G.
pub fn first_g() {
    runtime::GoBuilder::new()
        .name("first")
        .spawn(crash_here_with_null_read)
        .unwrap()
        .join()
        .ok();
}

/// Symptom: a crash inside a callback from a thread the runtime did not
/// create loses the parked Gs or the callback's frames.
pub fn in_foreign_callback() {
    for _ in 0..3 {
        runtime::go(parked_sleeper_function);
    }
    while runtime::stats().waiting_gs < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A plain thread: to the runtime, a foreign one.
    std::thread::spawn(|| {
        runtime::ffi::callback(callback_that_faults).ok();
    })
    .join()
    .ok();
}

#[inline(never)]
fn callback_that_faults() {
    std::hint::black_box(crash_here_with_null_read());
}

/// Not a crash: how long after the runtime's first use the symbolizer
/// thread has indexed this (large) binary and prepared what most dumps
/// need, and the process CPU that took (docs/benchmarks.md). A dump before
/// that waits for part of it.
pub fn symbolizer_prepared() {
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills the struct we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let (t, c) = (std::time::Instant::now(), cpu());
    runtime::go(|| ()).join().unwrap();
    println!("first_use_ms={:.2}", t.elapsed().as_secs_f64() * 1e3);
    while !signals::resolve::prepared() {
        std::thread::sleep(Duration::from_micros(200));
    }
    println!(
        "prepared_ms={:.2} cpu_ms={:.2}",
        t.elapsed().as_secs_f64() * 1e3,
        (cpu() - c).as_secs_f64() * 1e3
    );
}
