//! Foreign-thread scenarios (C threads calling back into gort), part of
//! the `scenarios` program.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type Cb = unsafe extern "C" fn(*mut c_void);

unsafe extern "C" {
    fn c_run_threads(nthreads: i32, ncalls: i32, cb: Cb, arg: *mut c_void) -> i32;
    fn c_short_lived_threads(n: i32, batch: i32, cb: Cb, arg: *mut c_void) -> i32;
    fn c_call_back_now(cb: Cb, arg: *mut c_void) -> i32;
    fn c_misuse(out: *mut i32);
    fn c_two_calls_then_dropm(cb: Cb, arg: *mut c_void, out: *mut i32);
    fn c_register_exit_probe();
    fn c_block_ms(ms: i32);
    fn c_gettid() -> std::ffi::c_long;
    fn c_example_main() -> i32;
    fn gort_dropm() -> i32;
}

static COUNT: AtomicUsize = AtomicUsize::new(0);

/// A callback that spawns a G and joins it.
unsafe extern "C" fn spawn_and_join(_: *mut c_void) {
    let v = runtime::go(|| 1usize).join().unwrap();
    COUNT.fetch_add(v, Ordering::Relaxed);
}

unsafe extern "C" fn count_only(_: *mut c_void) {
    COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Symptom: callbacks from many C threads at once deadlock, lose Gs, or
/// leak Ms.
pub fn many_threads() {
    let threads: i32 = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let calls: i32 = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let t = Instant::now();
    // SAFETY: spawn_and_join is a valid callback; arg is unused.
    let st = unsafe { c_run_threads(threads, calls, spawn_and_join, std::ptr::null_mut()) };
    println!("status={st}");
    println!("count={}", COUNT.load(Ordering::Relaxed));
    println!("expected={}", threads as usize * calls as usize);
    println!("secs={:.2}", t.elapsed().as_secs_f64());
    let s = runtime::stats();
    println!("extra_m_in_use={}", s.extra_m_in_use);
}

/// Symptom: short-lived C threads leak their extra Ms (mcount grows
/// without bound) or the counters stop matching the threads that exist.
pub fn short_lived() {
    // SAFETY: as above.
    let st = unsafe { c_short_lived_threads(1000, 16, count_only, std::ptr::null_mut()) };
    println!("status={st}");
    println!("count={}", COUNT.load(Ordering::Relaxed));
    // Thread-exit destructors run as the threads die, before pthread_join
    // returns; give the last ones a moment anyway.
    std::thread::sleep(Duration::from_millis(50));
    let (mcount, extra) = scheduler::extram::counts_consistent();
    let s = runtime::stats();
    println!("mcount={mcount}");
    println!("extra_m_count={extra}");
    println!("extra_m_in_use={}", s.extra_m_in_use);
    // Ms that claim a thread, and whether that thread really exists.
    let live: Vec<_> = scheduler::m::ALLMS
        .iter()
        .filter(|m| {
            matches!(
                m.status(),
                scheduler::m::MStatus::Running | scheduler::m::MStatus::Idle
            )
        })
        .collect();
    let alive = live
        .iter()
        .filter(|m| std::path::Path::new(&format!("/proc/self/task/{}", m.tid())).exists())
        .count();
    println!("threaded_ms={}", mcount - extra);
    println!("ms_with_live_thread={alive}");
    println!("ms_claiming_thread={}", live.len());
}

static TID: AtomicUsize = AtomicUsize::new(0);
static M_IDS: std::sync::Mutex<Vec<(i64, Option<usize>)>> = std::sync::Mutex::new(Vec::new());

/// Blocks inside the callback: join a G that sleeps, sleep itself.
unsafe extern "C" fn blocking_cb(_: *mut c_void) {
    let h = runtime::go(|| {
        runtime::sleep(Duration::from_millis(20));
        7
    });
    let v = h.join().unwrap();
    runtime::sleep(Duration::from_millis(10));
    // SAFETY: c_gettid has no preconditions.
    let tid = unsafe { c_gettid() } as i64;
    M_IDS
        .lock()
        .unwrap()
        .push((tid, runtime::ffi::thread_m_id()));
    COUNT.fetch_add(v, Ordering::Relaxed);
    TID.store(tid as usize, Ordering::Relaxed);
}

/// Symptom: a callback that blocks never resumes, resumes on another
/// thread, or the thread gets a new M on its second call.
pub fn blocking_callback() {
    let mut out = [0i32; 3];
    // SAFETY: blocking_cb is a valid callback; out has room for 3 ints.
    unsafe { c_two_calls_then_dropm(blocking_cb, std::ptr::null_mut(), out.as_mut_ptr()) };
    println!("first={} second={} dropm={}", out[0], out[1], out[2]);
    println!("count={}", COUNT.load(Ordering::Relaxed));
    let ids = M_IDS.lock().unwrap();
    println!("same_thread={}", ids.len() == 2 && ids[0].0 == ids[1].0);
    println!(
        "same_m={}",
        ids.len() == 2 && ids[0].1.is_some() && ids[0].1 == ids[1].1
    );
    println!("extra_m_in_use_after={}", runtime::stats().extra_m_in_use);
}

unsafe extern "C" fn nested_cb(arg: *mut c_void) {
    // SAFETY: arg points at the caller's u64 slot, alive for this call.
    let slot = unsafe { &mut *(arg as *mut (i64, u64)) };
    // SAFETY: c_gettid has no preconditions.
    slot.0 = unsafe { c_gettid() } as i64;
    slot.1 = runtime::current().map_or(0, |c| c.id);
    COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Symptom: runtime -> C -> runtime on one thread takes an extra M,
/// deadlocks on its own P, or runs the callback on another thread.
pub fn nested() {
    let r = runtime::go(|| {
        let me = runtime::current().unwrap().id;
        // SAFETY: c_gettid has no preconditions.
        let tid = unsafe { c_gettid() } as i64;
        let mut slot = (0i64, 0u64);
        let st = runtime::ffi::call(|| {
            // SAFETY: nested_cb is valid; slot outlives the call.
            unsafe { c_call_back_now(nested_cb, &mut slot as *mut _ as *mut c_void) }
        });
        // A plain C call (no syscall marking) calling back works too.
        // SAFETY: as above.
        let st2 = unsafe { c_call_back_now(nested_cb, &mut slot as *mut _ as *mut c_void) };
        (st, st2, slot.0 == tid, slot.1 == me)
    })
    .join()
    .unwrap();
    println!(
        "status={} status_plain={} same_thread={} same_g={}",
        r.0, r.1, r.2, r.3
    );
    println!("extra_m_in_use={}", runtime::stats().extra_m_in_use);
}

/// Symptom: misuse of the C ABI crashes, hangs or succeeds silently.
pub fn misuse() {
    let mut out = [99i32; 6];
    // SAFETY: out has room for 6 ints.
    unsafe { c_misuse(out.as_mut_ptr()) };
    println!("null_fn={}", out[0]);
    println!("dropm_fresh={}", out[1]);
    println!("needm_first={}", out[2]);
    println!("needm_again={}", out[3]);
    println!("dropm_bound={}", out[4]);
    println!("dropm_again={}", out[5]);
    // dropm on a runtime thread, and inside a callback.
    // SAFETY: gort_dropm has no preconditions.
    let on_g = runtime::go(|| unsafe { gort_dropm() }).join().unwrap();
    println!("dropm_on_g={on_g}");
    unsafe extern "C" fn drop_inside(arg: *mut c_void) {
        // SAFETY: arg points at an i32 owned by the caller.
        unsafe { *(arg as *mut i32) = gort_dropm() };
    }
    let mut inside = 0i32;
    // SAFETY: drop_inside is valid; `inside` outlives the threads.
    unsafe { c_run_threads(1, 1, drop_inside, &mut inside as *mut i32 as *mut c_void) };
    println!("dropm_in_callback={inside}");
    let s = runtime::stats();
    println!("extra_m_in_use={}", s.extra_m_in_use);
}

/// Symptom: a callback arriving while the process exits hangs or crashes.
pub fn during_exit() {
    // SAFETY: registers a C atexit handler; no preconditions.
    unsafe { c_register_exit_probe() };
    println!("value={}", runtime::go(|| 3).join().unwrap());
}

/// Symptom: with one P, a G blocked in a C call stops every other G.
pub fn syscall_handoff() {
    let t = Instant::now();
    let blocker = runtime::go(|| {
        runtime::syscall(|| {
            // SAFETY: c_block_ms has no preconditions.
            unsafe { c_block_ms(200) }
        })
    });
    // Let the blocker enter its call first.
    std::thread::sleep(Duration::from_millis(20));
    let hs: Vec<_> = (0..100).map(|i| runtime::go(move || i)).collect();
    let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let others = t.elapsed();
    blocker.join().unwrap();
    println!("sum={sum}");
    println!("others_ms={}", others.as_millis());
    println!("blocker_ms={}", t.elapsed().as_millis());
}

/// The C example of docs/foreign-threads.md.
pub fn c_example() {
    // SAFETY: c_example_main has no preconditions.
    let rc = unsafe { c_example_main() };
    println!("rc={rc}");
}

/// Symptom: concurrent needm/dropm corrupt the extra list or its counters
/// (debug builds also check `mcount - extra_m_count` against every M's
/// state at each unlock).
pub fn needm_stress() {
    let threads = 8;
    let rounds = 2000;
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..rounds {
                    runtime::ffi::needm().unwrap();
                    if (i + t) % 16 == 0 {
                        runtime::ffi::callback(|| runtime::go(|| ()).join().unwrap()).unwrap();
                    }
                    runtime::ffi::dropm().unwrap();
                    let (m, e) = scheduler::extram::counts_consistent();
                    assert!(m >= e, "mcount {m} < extra_m_count {e}");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let s = runtime::stats();
    println!("extra_m_in_use={}", s.extra_m_in_use);
    println!("extra_m_count={}", s.extra_m_count);
    println!("mcount={}", s.mcount);
}
