//! Named scenarios, each run by an integration test in a child process with
//! its own environment and a hard time limit: `scenarios <name>`.
//!
//! A scenario prints `key=value` lines the test asserts on, and exits 0 when
//! it completed. Each opens with the symptom it guards against.

mod blocking_scenarios;
mod capi_scenarios;
mod chan_scenarios;
mod crash_faults;
mod crash_relay;
mod crash_scenarios;
mod eco_scenarios;
mod fault_scenarios;
mod ffi_scenarios;
mod net_scenarios;
mod sync_scenarios;
mod sysmon_scenarios;

// The C fixtures are bundled into the `tests` library by its build script.
extern crate tests as _;

/// Counts every allocator call, per thread, so crash scenarios can prove
/// the signal handler allocates nothing: the faulting thread's own count,
/// since other threads of the runtime (an M starting another M, sysmon) may
/// allocate while the dump runs, which says nothing about the handler.
#[global_allocator]
static GLOBAL: testkit::Counting = testkit::Counting;

/// The faulting thread's allocation count when the fault happened.
static ALLOCS_AT_FAULT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Installed before gort, so gort chains to it after its dump: prints how
/// many allocations happened since the fault (the dump's).
extern "C" fn report_allocs(_: libc::c_int) {
    let mut n = testkit::allocations().wrapping_sub(ALLOCS_AT_FAULT.load(Ordering::Relaxed));
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // SAFETY: write(2) of our own buffers.
    unsafe {
        libc::write(1, b"allocs_during_dump=".as_ptr().cast(), 19);
        libc::write(1, digits[i..].as_ptr().cast(), digits.len() - i);
        libc::write(1, b"\n".as_ptr().cast(), 1);
    }
}

/// Symptom: the handler allocates (and can deadlock inside malloc).
fn crash_noalloc() {
    // SAFETY: installing a plain handler before gort starts.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = report_allocs as *const () as usize;
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
    }
    // Start everything, let the symbol table finish building.
    runtime::go(|| ()).join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !signals_ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The main thread's handle is made lazily by std: make it now, so that
    // joining below allocates nothing while the dump runs.
    let _ = std::thread::current();
    let h = runtime::go(|| {
        // Let the main thread reach its park in join first.
        runtime::sleep(Duration::from_millis(100));
        // No park between here and the fault: the same thread faults.
        ALLOCS_AT_FAULT.store(testkit::allocations(), Ordering::SeqCst);
        let p = std::hint::black_box(std::ptr::null::<u8>());
        // SAFETY: not safe: the fault is the point.
        unsafe { std::ptr::read_volatile(p) }
    });
    h.join().ok();
}

fn signals_ready() -> bool {
    // The runtime builds its symbol table in the background; its readiness
    // shows in a symbolized frame. Ask the library directly.
    signals::symbols::is_ready()
}

use runtime::sync::WaitGroup;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Symptom: with procs = 1, a G that yields never lets the other run, or
/// two yielding Gs do not take turns.
fn yield_alternates() {
    // A parent G queues both children before either runs (procs = 1: the
    // parent keeps the only P until it parks in join).
    let order = runtime::go(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|who| {
                let log = log.clone();
                runtime::go(move || {
                    for _ in 0..5 {
                        log.lock().unwrap().push(who);
                        runtime::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let log = log.lock().unwrap();
        log.join("")
    })
    .join()
    .unwrap();
    let st = runtime::stats();
    println!("order={order}");
    // A G whose P sysmon took (it read the thread as blocked in the kernel)
    // runs on without a P until its next runtime call, while the other G
    // has the P to itself.
    println!("retakes={}", st.retakes_kernel + st.retakes_slice);
}

/// Symptom: with 2 procs, one M runs every G (no spreading, no stealing).
fn two_procs_both_run() {
    let tids = Arc::new(Mutex::new(HashSet::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let tids = tids.clone();
            let running = running.clone();
            runtime::go(move || {
                running.fetch_add(1, Ordering::SeqCst);
                // Busy until both Gs run at the same time.
                let deadline = Instant::now() + Duration::from_secs(10);
                while running.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
                tids.lock().unwrap().insert(tid());
                running.load(Ordering::SeqCst)
            })
        })
        .collect();
    let together: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    println!("together={}", together.iter().all(|&n| n == 2));
    println!("threads={}", tids.lock().unwrap().len());
    println!("mcount={}", runtime::stats().mcount);
}

/// Symptom: the two-G yield test passes by luck; a yield ping-pong under
/// procs = 1 with many Gs must still finish and be fair.
fn many_yielders() {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..100).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    // A parent G queues all 100 before any runs (procs = 1), so none gets a
    // head start.
    let (c2, s2) = (counts.clone(), stop.clone());
    let parent = runtime::go(move || {
        let hs: Vec<_> = (0..100)
            .map(|i| {
                let counts = c2.clone();
                let stop = s2.clone();
                runtime::go(move || {
                    while !stop.load(Ordering::Relaxed) {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                        runtime::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    parent.join().unwrap();
    let v: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!("min={}", v.iter().min().unwrap());
    println!("max={}", v.iter().max().unwrap());
}

/// Symptom: `try_go` panics or hangs when stacks run out, or leaks the G.
fn stack_limit() {
    runtime::Builder::new().max_stacks(100).build().unwrap();
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let mut hs = Vec::new();
    let err = loop {
        let wg2 = wg.clone();
        match runtime::try_go(move || wg2.wait()) {
            Ok(h) => hs.push(h),
            Err(e) => break e,
        }
        if hs.len() > 1000 {
            println!("error=none");
            return;
        }
    };
    println!("spawned={}", hs.len());
    println!("error={err}");
    wg.done();
    for h in hs.drain(..) {
        h.join().unwrap();
    }
    // The stacks came back: spawning works again.
    let again = runtime::try_go(|| 5).map(|h| h.join().unwrap());
    println!("after={again:?}");
}

/// Symptom: with mprotect guards, hitting vm.max_map_count panics or gives
/// an error that does not say what to change.
fn map_limit() {
    runtime::Builder::new()
        .force_mprotect_guards(true)
        .build()
        .unwrap();
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let mut hs = Vec::new();
    let err = loop {
        let wg2 = wg.clone();
        match runtime::try_go(move || wg2.wait()) {
            Ok(h) => hs.push(h),
            Err(e) => break e,
        }
        if hs.len() > 200_000 {
            println!("error=none");
            return;
        }
    };
    println!("spawned={}", hs.len());
    println!("guard={:?}", runtime::stats().guard);
    println!("error={err}");
    wg.done();
    for h in hs.drain(..) {
        h.join().unwrap();
    }
    println!("joined=ok");
}

/// Symptom: a bad GORT_* value crashes the program or is silently ignored.
fn env_config() {
    let s = runtime::stats();
    println!("procs={}", s.procs);
    println!("value={}", runtime::go(|| 41 + 1).join().unwrap());
}

/// Symptom: a panicking G takes the process down, or its message does not
/// say which G panicked.
fn panic_names_g() {
    let h = runtime::GoBuilder::new()
        .name("doomed")
        .spawn(|| -> u32 { panic!("boom {}", std::hint::black_box(7)) })
        .unwrap();
    let id = h.id();
    let r = h.join();
    // The payload is a String, or a &str when the message is constant.
    let msg = r.as_ref().err().and_then(|p| {
        (**p)
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| (**p).downcast_ref::<&str>().map(|s| s.to_string()))
    });
    println!("id={id}");
    println!("payload={msg:?}");
    println!("after={}", runtime::go(|| 1).join().unwrap());
}

/// Symptom: `main` returning hangs while Gs are still parked or running.
fn exit_with_live_gs() {
    for _ in 0..100 {
        runtime::go(|| runtime::sleep(Duration::from_secs(3600)));
    }
    runtime::go(|| {
        loop {
            runtime::yield_now();
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    println!("returning");
}

/// Symptom: an idle runtime burns CPU (spinning Ms never sleep).
fn idle_cpu() {
    for _ in 0..1000 {
        runtime::go(|| ()).join().unwrap();
    }
    // A ping-pong between two Gs first: it makes spinners spin longer
    // (`spin_budget`), which must end once the runtime goes idle.
    let (ping_tx, ping_rx) = runtime::chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = runtime::chan::bounded::<u32>(0);
    let echo = runtime::go(move || {
        for v in &ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
    runtime::go(move || {
        for i in 0..200_000 {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
        }
    })
    .join()
    .unwrap();
    echo.join().unwrap();
    // Start-up work (the symbol table, built on a helper thread) is not
    // idling: let it finish first.
    while !signals_ready() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - before;
    println!("cpu_ms={}", used.as_millis());
    println!("idle_ms={}", runtime::stats().idle_ms);
}

fn cpu_time() -> Duration {
    let mut ru = libc::rusage {
        ru_utime: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        ru_stime: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        ru_maxrss: 0,
        ru_ixrss: 0,
        ru_idrss: 0,
        ru_isrss: 0,
        ru_minflt: 0,
        ru_majflt: 0,
        ru_nswap: 0,
        ru_inblock: 0,
        ru_oublock: 0,
        ru_msgsnd: 0,
        ru_msgrcv: 0,
        ru_nsignals: 0,
        ru_nvcsw: 0,
        ru_nivcsw: 0,
    };
    // SAFETY: ru is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Symptom: Ms multiply without bound, or the limit is hit with a panic or
/// a hang instead of Go's clear fatal error.
fn thread_limit() {
    // Each G locks its thread and sleeps, so each holds an M; with
    // GORT_MAX_THREADS=4 the fifth M cannot be made.
    let hs: Vec<_> = (0..16)
        .map(|_| {
            runtime::go(|| {
                runtime::lock_os_thread();
                runtime::sleep(Duration::from_secs(5));
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("unreachable: all joined");
}

/// Symptom: a G that exits while locked leaves its thread running other
/// Gs (which may inherit its thread state).
fn locked_exit() {
    let before = runtime::stats().mcount;
    let tid = runtime::go(|| {
        runtime::lock_os_thread();
        tid()
    })
    .join()
    .unwrap();
    // The thread exits shortly after the G.
    let gone = (0..2000).any(|_| {
        std::thread::sleep(Duration::from_millis(1));
        !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    });
    println!("thread_gone={gone}");
    println!("works={}", runtime::go(|| 9).join().unwrap());
    println!("mcount_before={before}");
}

/// Symptom: races between parking, readying, stealing and timers lose a G
/// (hang), run one twice (crash) or lose a wake-up, visible only with more
/// Ps than cores.
fn stress() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let total = Arc::new(AtomicUsize::new(0));
    for round in 0..rounds {
        let wg = Arc::new(WaitGroup::new());
        let hs: Vec<_> = (0..200)
            .map(|i| {
                let (wg, total) = (wg.clone(), total.clone());
                wg.add(1);
                runtime::go(move || {
                    let mut kids = Vec::new();
                    for k in 0..5 {
                        let total = total.clone();
                        kids.push(runtime::go(move || {
                            match (i + k + round) % 4 {
                                0 => runtime::yield_now(),
                                1 => {
                                    runtime::sleep(Duration::from_micros(((i * 7 + k) % 50) as u64))
                                }
                                2 => runtime::go(runtime::yield_now).join().unwrap(),
                                _ => {}
                            }
                            total.fetch_add(1, Ordering::Relaxed);
                        }));
                    }
                    for kid in kids {
                        kid.join().unwrap();
                    }
                    wg.done();
                })
            })
            .collect();
        wg.wait();
        for h in hs {
            h.join().unwrap();
        }
    }
    println!("total={}", total.load(Ordering::Relaxed));
    println!("expected={}", rounds * 200 * 5);
}

/// Starts the runtime and waits for its symbol table. The table is built in
/// the background at start-up; a crash before it is ready prints
/// module+offset only. Waiting lets the tests assert on function names.
fn wait_for_symbols() {
    runtime::go(|| ()).join().unwrap();
    // qemu-user on a loaded host: emulated, the build takes far longer.
    let wait = if tests::under_qemu() { 100 } else { 30 };
    let deadline = Instant::now() + Duration::from_secs(wait);
    while !signals_ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let scenarios: &[(&str, fn())] = &[
        ("yield_alternates", yield_alternates),
        ("two_procs_both_run", two_procs_both_run),
        ("many_yielders", many_yielders),
        ("stack_limit", stack_limit),
        ("map_limit", map_limit),
        ("env_config", env_config),
        ("panic_names_g", panic_names_g),
        ("exit_with_live_gs", exit_with_live_gs),
        ("idle_cpu", idle_cpu),
        ("thread_limit", thread_limit),
        ("locked_exit", locked_exit),
        ("stress", stress),
        ("sysmon_thread_sleep", sysmon_scenarios::thread_sleep),
        ("sysmon_busy_loop", sysmon_scenarios::busy_loop),
        ("sysmon_preempt_point", sysmon_scenarios::preempt_point),
        (
            "net_io_wait_not_deadlock",
            net_scenarios::io_wait_not_deadlock,
        ),
        ("net_late_peer", net_scenarios::late_peer),
        ("ffi_many_threads", ffi_scenarios::many_threads),
        ("ffi_short_lived", ffi_scenarios::short_lived),
        ("ffi_blocking_callback", ffi_scenarios::blocking_callback),
        ("ffi_nested", ffi_scenarios::nested),
        ("ffi_misuse", ffi_scenarios::misuse),
        ("ffi_during_exit", ffi_scenarios::during_exit),
        ("ffi_syscall_handoff", ffi_scenarios::syscall_handoff),
        ("ffi_c_example", ffi_scenarios::c_example),
        ("ffi_needm_stress", ffi_scenarios::needm_stress),
        ("capi_before_start", capi_scenarios::before_start),
        ("capi_join", capi_scenarios::join),
        ("capi_syscall", capi_scenarios::syscall),
        ("capi_signal_handler", capi_scenarios::signal_handler),
        ("capi_forked_child", capi_scenarios::forked_child),
        ("chan_sleep_order", chan_scenarios::sleep_order),
        (
            "fault_idle_foreign_threads",
            fault_scenarios::idle_foreign_threads,
        ),
        (
            "fault_builder_threads_below_procs",
            fault_scenarios::builder_threads_below_procs,
        ),
        (
            "fault_env_threads_below_builder_procs",
            fault_scenarios::env_threads_below_builder_procs,
        ),
        (
            "fault_small_stack_panic",
            fault_scenarios::small_stack_panic,
        ),
        (
            "fault_callback_panic_first",
            fault_scenarios::callback_panic_first,
        ),
        (
            "fault_address_space_limit",
            fault_scenarios::address_space_limit,
        ),
        ("fault_fork_in_g", fault_scenarios::fork_in_g),
        (
            "fault_crash_in_forked_child",
            fault_scenarios::crash_in_forked_child,
        ),
        ("fault_panic_payloads", fault_scenarios::panic_payloads),
        (
            "crash_panic_in_drop_while_unwinding",
            fault_scenarios::panic_in_drop_while_unwinding,
        ),
        ("fault_duration_max", fault_scenarios::duration_max),
        ("fault_emfile_accept", fault_scenarios::emfile_accept),
        (
            "crash_quit_in_blocking_call",
            fault_scenarios::quit_in_blocking_call,
        ),
        ("crash_busy_process", fault_scenarios::crash_busy_process),
        (
            "crash_callback_stack_overflow",
            fault_scenarios::callback_stack_overflow,
        ),
        (
            "fault_short_lived_foreign_threads",
            fault_scenarios::short_lived_foreign_threads,
        ),
        (
            "crash_silent_foreign_threads",
            fault_scenarios::silent_foreign_threads,
        ),
        ("blocking_stall_bound", blocking_scenarios::stall_bound),
        (
            "blocking_callback_barrier",
            blocking_scenarios::callback_barrier,
        ),
        ("blocking_std_mpsc", blocking_scenarios::std_mpsc),
        ("blocking_std_condvar", blocking_scenarios::std_condvar),
        ("blocking_std_barrier", blocking_scenarios::std_barrier),
        (
            "blocking_thread_limit_stall",
            blocking_scenarios::thread_limit_stall,
        ),
        ("blocking_retake_cause", blocking_scenarios::retake_cause),
        ("crash_blocked_read", blocking_scenarios::blocked_read_dump),
        ("blocking_log", blocking_scenarios::blocking_log),
        ("blocking_retake_race", blocking_scenarios::retake_race),
        (
            "blocking_procs_bound_cpu",
            blocking_scenarios::procs_bound_cpu,
        ),
        (
            "blocking_procs_bound_ticker",
            blocking_scenarios::procs_bound_ticker,
        ),
        ("crash_segv_in_g", crash_scenarios::segv_in_g),
        ("crash_deadlock", crash_scenarios::deadlock),
        ("crash_sigfpe", crash_scenarios::sigfpe),
        ("crash_not_a_deadlock", crash_scenarios::not_a_deadlock),
        (
            "crash_deadlock_after_thread_exits",
            crash_scenarios::deadlock_after_thread_exits,
        ),
        ("crash_noalloc", crash_noalloc),
        ("crash_quit_dumps_all", crash_scenarios::quit_dumps_all),
        ("crash_created_by_sites", crash_scenarios::created_by_sites),
        ("symbolizer_prepared", crash_scenarios::symbolizer_prepared),
        (
            "crash_dumps_all_threads",
            crash_scenarios::crash_dumps_all_threads,
        ),
        ("crash_seed", crash_scenarios::seed_extra_ms_then_crash),
        ("crash_g_stack_overflow", crash_scenarios::g_stack_overflow),
        ("crash_first_g", crash_scenarios::first_g),
        (
            "crash_in_foreign_callback",
            crash_scenarios::in_foreign_callback,
        ),
        (
            "crash_thread_stack_overflow",
            crash_scenarios::thread_stack_overflow,
        ),
        (
            "crash_panic_in_crash_mode",
            crash_scenarios::panic_in_crash_mode,
        ),
        (
            "crash_segv_on_plain_thread",
            crash_scenarios::segv_on_plain_thread,
        ),
        (
            "crash_handler_without_onstack",
            crash_scenarios::handler_without_onstack,
        ),
        ("crash_idle_c_threads", crash_relay::idle_c_threads),
        ("crash_two_faults_at_once", crash_relay::two_faults_at_once),
        ("crash_wild_write", crash_faults::wild_write),
        ("crash_abort", crash_faults::abort_in_g),
        ("crash_sigbus", crash_faults::sigbus),
        ("crash_sigill", crash_faults::sigill),
        ("crash_levels", crash_faults::levels),
        ("crash_many_parked", crash_faults::many_parked),
        ("crash_chain_previous", crash_faults::chain_previous),
        ("sync_mutex_stress", sync_scenarios::mutex_stress),
        ("sync_mutex_starvation", sync_scenarios::mutex_starvation),
        ("crash_mutex_deadlock", sync_scenarios::mutex_deadlock),
        (
            "sync_timed_wait_not_deadlock",
            sync_scenarios::timed_wait_not_deadlock,
        ),
        (
            "sync_timed_waits_end_early",
            sync_scenarios::timed_waits_end_early,
        ),
        ("sync_semaphore_fifo", sync_scenarios::semaphore_fifo),
        (
            "crash_thread_timed_wait_not_deadlock",
            sync_scenarios::thread_timed_wait_not_deadlock,
        ),
    ];
    // These install a handler before gort starts, or crash at its very
    // start, so they start it themselves.
    const OWN_START: &[&str] = &["crash_noalloc", "crash_chain_previous", "crash_first_g"];
    if name.starts_with("crash_") && !OWN_START.contains(&name.as_str()) {
        wait_for_symbols();
    }
    let all = || scenarios.iter().chain(eco_scenarios::SCENARIOS);
    match all().find(|(n, _)| *n == name) {
        Some((_, f)) => f(),
        None => {
            eprintln!("unknown scenario {name:?}; known:");
            for (n, _) in all() {
                eprintln!("  {n}");
            }
            std::process::exit(64);
        }
    }
}
