//! Foreign-thread callbacks and C calls in gort, the peer of `bench/cgo`:
//! (1) a C thread (made with `pthread_create`, unknown to gort) calls back
//! through the C ABI `gort_callback` on its bound extra M; (2) the first
//! callback of a new C thread (`needm`); (3) `runtime::syscall` around an
//! empty `extern "C"` function, from a G. Prints `result` lines.

use std::ffi::c_void;
use std::time::Instant;

extern "C" fn empty_cb(_: *mut c_void) {}

#[inline(never)]
extern "C" fn empty() {}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Body of a C thread: `arg` = number of timed callbacks; returns ns each.
extern "C" fn loop_thread(arg: *mut c_void) -> *mut c_void {
    let n = arg as u64;
    // SAFETY: a valid callback and argument.
    unsafe { gort::gort_callback(Some(empty_cb), std::ptr::null_mut()) };
    let t = now_ns();
    for _ in 0..n {
        // SAFETY: as above.
        unsafe { gort::gort_callback(Some(empty_cb), std::ptr::null_mut()) };
    }
    ((now_ns() - t) / n) as usize as *mut c_void
}

extern "C" fn first_thread(_: *mut c_void) -> *mut c_void {
    let t = now_ns();
    // SAFETY: a valid callback and argument.
    unsafe { gort::gort_callback(Some(empty_cb), std::ptr::null_mut()) };
    (now_ns() - t) as usize as *mut c_void
}

fn c_thread(f: extern "C" fn(*mut c_void) -> *mut c_void, arg: u64) -> u64 {
    let mut t: libc::pthread_t = 0;
    let mut r: *mut c_void = std::ptr::null_mut();
    // SAFETY: a plain pthread running an extern "C" body; joined below.
    unsafe {
        libc::pthread_create(&mut t, std::ptr::null(), f, arg as usize as *mut c_void);
        libc::pthread_join(t, &mut r);
    }
    r as usize as u64
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    runtime::go(|| ()).join().unwrap();
    for _ in 0..reps {
        println!(
            "result workload=callback impl=gort ns_per_op={}",
            c_thread(loop_thread, 100_000)
        );
    }
    for _ in 0..reps {
        let mut v: Vec<u64> = (0..100).map(|_| c_thread(first_thread, 0)).collect();
        v.sort_unstable();
        println!(
            "result workload=first_callback impl=gort ns_per_op={}",
            v[v.len() / 2]
        );
    }
    for _ in 0..reps {
        let per = runtime::go(|| {
            let n = 2_000_000u32;
            let f = std::hint::black_box(empty as extern "C" fn());
            let t = Instant::now();
            for _ in 0..n {
                runtime::syscall(|| f());
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .join()
        .unwrap();
        println!("result workload=c_call impl=gort ns_per_op={per:.1}");
    }
}
