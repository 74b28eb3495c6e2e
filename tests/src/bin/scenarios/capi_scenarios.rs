//! Scenarios of the C ABI's misuse codes and of finishing from C what C
//! started (`gort_spawn` + `gort_join`, `gort_syscall`), part of the
//! `scenarios` program. Each prints `case=code` lines.

use gort::{
    gort_callback, gort_dropm, gort_go, gort_join, gort_sleep_ns, gort_spawn, gort_syscall,
    gort_yield,
};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn c_block_ms(ms: i32);
    fn c_install_usr1(target: extern "C" fn(c_int)) -> c_int;
}

unsafe extern "C" fn noop(_: *mut c_void) {}

unsafe extern "C" fn forty_two(_: *mut c_void) -> c_int {
    42
}

/// Returns its argument (an integer smuggled in the pointer) after a park.
unsafe extern "C" fn echo_after_sleep(arg: *mut c_void) -> c_int {
    gort_sleep_ns(1_000_000);
    arg as usize as c_int
}

/// Symptom: a C call into gort before the runtime started crashes, starts
/// threads for nothing, or returns success for what cannot exist.
pub fn before_start() {
    let mut r = 7;
    // SAFETY: `r` is writable; the other calls take no pointers.
    unsafe {
        println!("join_unknown={}", gort_join(1, &mut r));
        println!("join_zero={}", gort_join(0, &mut r));
        println!("join_negative={}", gort_join(-3, null_mut()));
        println!("syscall_null={}", gort_syscall(None, null_mut()));
        println!("callback_null={}", gort_callback(None, null_mut()));
        println!("go_null={}", gort_go(None, null_mut()));
        println!("spawn_null={}", gort_spawn(None, null_mut()));
    }
    println!("result_untouched={r}");
    println!("dropm={}", gort_dropm());
    println!("yield={}", gort_yield());
    println!("sleep={}", gort_sleep_ns(1000));
    // SAFETY: `count_call` ignores its argument.
    let syscall = unsafe { gort_syscall(Some(count_call), null_mut()) };
    println!(
        "syscall_plain={syscall} calls={}",
        CALLS.load(Ordering::SeqCst)
    );
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_call(_: *mut c_void) {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

static SELF_HANDLE: AtomicI64 = AtomicI64::new(0);
static SELF_CODE: AtomicI32 = AtomicI32::new(i32::MIN);

/// Joins its own handle (published by the spawner), publishes the code and
/// returns it.
unsafe extern "C" fn join_self(_: *mut c_void) -> c_int {
    let mut h = SELF_HANDLE.load(Ordering::Acquire);
    while h == 0 {
        gort_yield();
        h = SELF_HANDLE.load(Ordering::Acquire);
    }
    // SAFETY: a null result pointer is allowed.
    let st = unsafe { gort_join(h, null_mut()) };
    SELF_CODE.store(st, Ordering::Release);
    st
}

/// Symptom: a G started from C cannot be joined, a handle is joined twice
/// (twice freed, or a hang), or a G joining itself deadlocks.
pub fn join() {
    // SAFETY: every function passed is a valid callback for its argument;
    // result pointers are writable.
    unsafe {
        let h = gort_spawn(Some(forty_two), null_mut());
        println!("spawn_positive={}", h > 0);
        let mut r = 0;
        println!("join={} result={r}", gort_join(h, &mut r));
        let mut r2 = -1;
        let st = gort_join(h, &mut r2);
        println!("join_again={st} result_untouched={r2}");
        println!("join_unissued={}", gort_join(h + 1000, &mut r2));
        println!("join_negative={}", gort_join(-1, &mut r2));

        let h = gort_spawn(Some(join_self), null_mut());
        SELF_HANDLE.store(h, Ordering::Release);
        // Join only after the G tried: a handle being joined is no longer
        // the G's to try.
        while SELF_CODE.load(Ordering::Acquire) == i32::MIN {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut r = 0;
        let st = gort_join(h, &mut r);
        println!("join_self_outer={st} join_self={r}");

        // Many Gs joined from a G, each parking before it returns; results
        // in order; then every handle is spent.
        let sum = runtime::go(|| {
            let hs: Vec<i64> = (1..=100usize)
                .map(|i| gort_spawn(Some(echo_after_sleep), i as *mut c_void))
                .collect();
            let mut sum = 0;
            for &h in &hs {
                let mut r = 0;
                assert_eq!(gort_join(h, &mut r), 0);
                sum += r;
            }
            let spent = hs
                .iter()
                .filter(|&&h| gort_join(h, null_mut()) == -11)
                .count();
            (sum, spent)
        })
        .join()
        .unwrap();
        println!("sum_from_g={} spent={}", sum.0, sum.1);

        // Joined from a plain thread, with a null result pointer.
        let h = gort_spawn(Some(forty_two), null_mut());
        let st = std::thread::spawn(move || gort_join(h, null_mut()))
            .join()
            .unwrap();
        println!("join_from_thread={st}");
    }
}

static OTHERS_DONE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn block_200ms(_: *mut c_void) {
    // SAFETY: c_block_ms has no preconditions.
    unsafe { c_block_ms(200) }
}

/// Symptom: with one P, a G in a long C call made through `gort_syscall`
/// stops every other G (the P is not set aside).
pub fn syscall() {
    let t = Instant::now();
    let blocker = runtime::go(|| {
        // SAFETY: block_200ms ignores its argument.
        unsafe { gort_syscall(Some(block_200ms), null_mut()) }
    });
    // Let the blocker enter its call first.
    std::thread::sleep(Duration::from_millis(20));
    let hs: Vec<_> = (0..100)
        .map(|_| runtime::go(|| OTHERS_DONE.fetch_add(1, Ordering::Relaxed)))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let others = t.elapsed();
    let st = blocker.join().unwrap();
    println!("syscall={st}");
    println!("others={}", OTHERS_DONE.load(Ordering::Relaxed));
    println!("others_ms={}", others.as_millis());
    println!("blocker_ms={}", t.elapsed().as_millis());
}

/// What the SIGUSR1 handler saw, one slot per C ABI call; `i32::MIN`:
/// the handler did not run.
static IN_HANDLER: [AtomicI32; 7] = [const { AtomicI32::new(i32::MIN) }; 7];
const HANDLER_CALLS: [&str; 7] = [
    "callback", "sleep", "yield", "syscall", "join", "go", "spawn",
];
/// Callbacks that ran (the one called from a handler on a plain thread
/// spawns and joins a G).
static CALLBACKS_RUN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_and_spawn(_: *mut c_void) {
    let v = runtime::go(|| 1).join().unwrap();
    gort_sleep_ns(1_000_000);
    CALLBACKS_RUN.fetch_add(v, Ordering::SeqCst);
}

/// Called by the C fixture's SIGUSR1 handler.
extern "C" fn on_usr1(_: c_int) {
    // SAFETY: valid callbacks; a handle never issued; null result.
    let got = unsafe {
        [
            gort_callback(Some(count_and_spawn), null_mut()),
            gort_sleep_ns(1_000_000),
            gort_yield(),
            gort_syscall(Some(noop), null_mut()),
            gort_join(1 << 40, null_mut()),
            gort_go(Some(noop), null_mut()) as c_int,
            gort_spawn(Some(forty_two), null_mut()) as c_int,
        ]
    };
    for (slot, v) in IN_HANDLER.iter().zip(got) {
        slot.store(v, Ordering::SeqCst);
    }
}

/// Gives the calling thread an alternate signal stack big enough for a
/// callback's start (binding an extra M) in a debug build: std's own is
/// only a few pages. The stack is leaked: the thread may use it until it
/// exits.
fn big_altstack() {
    let size = 256 * 1024;
    let mem = Box::leak(vec![0u8; size].into_boxed_slice());
    let ss = libc::stack_t {
        ss_sp: mem.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: the stack is valid, leaked, and used only by this thread.
    unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) };
}

/// Raises SIGUSR1 at the calling thread (delivered before this returns) and
/// prints what the handler's calls returned, as `<prefix>_<call>=code`.
fn raise_and_report(prefix: &str) {
    for slot in &IN_HANDLER {
        slot.store(i32::MIN, Ordering::SeqCst);
    }
    // SAFETY: signalling the calling thread; the handler is installed.
    unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
    for (name, slot) in HANDLER_CALLS.iter().zip(&IN_HANDLER) {
        println!("{prefix}_{name}={}", slot.load(Ordering::SeqCst));
    }
}

/// Symptom (issue 18): `gort_callback` from a signal handler that
/// interrupted a G ran the callback inline on the interrupted G; when it
/// parked, the process died (`g_exit: a dead G was resumed`, SIGSEGV) or
/// hung. The C ABI must refuse there, and keep working from handlers on
/// plain threads and main. `SKIP_G=1` leaves out the handlers on Gs (see
/// the test for where), `SKIP_MAIN=1` the handler on the main thread.
pub fn signal_handler() {
    // A handler for SIGUSR1 on the alternate stack, as gort requires on its
    // threads (in C: see the fixture for i386's stack alignment).
    // SAFETY: on_usr1 only calls the C ABI and stores atomics.
    assert_eq!(unsafe { c_install_usr1(on_usr1) }, 0);
    // A handler interrupting a G, three times over on different Gs, with
    // other Gs parking and running meanwhile.
    let on_gs = std::env::var_os("SKIP_G").is_none();
    let busy: Vec<_> = (0..if on_gs { 8 } else { 0 })
        .map(|_| {
            runtime::go(|| {
                for _ in 0..20 {
                    runtime::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    for round in 0..if on_gs { 3 } else { 0 } {
        let prefix = ["on_g", "on_g_again", "on_g_third"][round];
        runtime::go(move || raise_and_report(prefix))
            .join()
            .unwrap();
    }
    for h in busy {
        h.join().unwrap();
    }
    println!("callbacks_after_g={}", CALLBACKS_RUN.load(Ordering::SeqCst));
    // Main, then a plain thread: the callback runs as a G of its own.
    // `SKIP_MAIN=1` leaves out main's (see the test for where).
    if std::env::var_os("SKIP_MAIN").is_none() {
        big_altstack();
        raise_and_report("main");
    }
    std::thread::spawn(|| {
        big_altstack();
        raise_and_report("plain");
    })
    .join()
    .unwrap();
    println!(
        "callbacks_after_plain={}",
        CALLBACKS_RUN.load(Ordering::SeqCst)
    );
    // The runtime still works.
    println!("after={}", runtime::go(|| 5).join().unwrap());
}

/// Symptom: a child of `fork` (whose runtime threads stayed in the parent)
/// that starts a G or calls back from C hangs on a lock or waits for a
/// thread that does not exist, instead of getting a code.
pub fn forked_child() {
    runtime::go(|| ()).join().unwrap();
    // SAFETY: the child only calls the C ABI and async-signal-safe
    // functions (write, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid callbacks for their arguments.
        let codes = unsafe {
            [
                gort_go(Some(noop), null_mut()),
                gort_spawn(Some(forty_two), null_mut()),
                i64::from(gort_callback(Some(noop), null_mut())),
            ]
        };
        // "-13,-13,-13": each code as two digits; "-99" for anything that is
        // not a code (an id: the G started).
        let mut line = [0u8; 16];
        let mut n = 0;
        for (i, c) in codes.iter().enumerate() {
            let code = if (-98..0).contains(c) { -*c } else { 99 };
            if i > 0 {
                line[n] = b',';
                n += 1;
            }
            line[n] = b'-';
            line[n + 1] = b'0' + (code / 10) as u8;
            line[n + 2] = b'0' + (code % 10) as u8;
            n += 3;
        }
        line[n] = b'\n';
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(1, b"child=".as_ptr().cast(), 6);
            libc::write(1, line.as_ptr().cast(), n + 1);
            libc::_exit(0);
        }
    }
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    println!("child_exit={}", libc::WEXITSTATUS(st));
    println!("parent_after={}", runtime::go(|| 6).join().unwrap());
}
