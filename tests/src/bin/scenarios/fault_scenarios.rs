//! The fault matrix: misuse, limits and exhaustion, each a scenario run by
//! `tests/tests/faults.rs` in a child process. Misuse must be an error and
//! a limit a stall or an error, never a crash, a hang or undefined
//! behaviour. Each scenario opens with the symptom it guards against.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A gate plain threads wait on until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Symptom: a pool of foreign threads that once called back keeps its
/// extra Ms, those Ms count against `GORT_MAX_THREADS`, and a few Gs in
/// plain blocking calls later kill the process with `thread exhaustion`.
/// Run with `GORT_MAX_THREADS=8 GORT_MAXPROCS=2`.
pub fn idle_foreign_threads() {
    let gate = Arc::new(Gate::default());
    let called = Arc::new(AtomicUsize::new(0));
    let pool: Vec<_> = (0..10)
        .map(|_| {
            let (gate, called) = (gate.clone(), called.clone());
            std::thread::spawn(move || {
                runtime::ffi::callback(|| ()).expect("callback");
                called.fetch_add(1, Ordering::SeqCst);
                gate.wait();
            })
        })
        .collect();
    while called.load(Ordering::SeqCst) < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("extra_m_in_use={}", runtime::stats().extra_m_in_use);
    // Each G holds its M in the kernel; sysmon hands the Ps to new Ms.
    let hs: Vec<_> = (0..4)
        .map(|_| runtime::go(|| std::thread::sleep(Duration::from_millis(300))))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let s = runtime::stats();
    println!("created_threads={}", s.created_threads());
    gate.open();
    for t in pool {
        t.join().unwrap();
    }
    println!("done=ok");
}

/// Symptom: `Builder::procs(8).max_threads(2)` returns `Ok`, then the
/// runtime dies of thread exhaustion blaming a variable nobody set.
pub fn builder_threads_below_procs() {
    match runtime::Builder::new().procs(8).max_threads(2).build() {
        Ok(()) => println!("error=none"),
        Err(e) => println!("error={e}"),
    }
    // Nothing started: a valid configuration still builds.
    println!(
        "valid={:?}",
        runtime::Builder::new().procs(2).max_threads(3).build()
    );
    println!("value={}", runtime::go(|| 6 * 7).join().unwrap());
}

/// Symptom: `GORT_MAX_THREADS=2` with a builder's `procs(8)` is accepted
/// and the error, if any, names the wrong setting. Run with
/// `GORT_MAX_THREADS=2`.
pub fn env_threads_below_builder_procs() {
    match runtime::Builder::new().procs(8).build() {
        Ok(()) => println!("error=none"),
        Err(e) => println!("error={e}"),
    }
}

/// Symptom: the smallest accepted stack overflows inside gort's own panic
/// hook (it resolved the backtrace on the G's stack) when
/// `RUST_BACKTRACE=1`, so a panicking G kills the process instead of
/// giving `join` an `Err`; and `max_stacks(1)` leaves no stack for a G
/// because the spare extra M's stack counted against it.
pub fn small_stack_panic() {
    runtime::Builder::new()
        .stack_size(scheduler::stack::MIN_STACK_SIZE)
        .max_stacks(1)
        .build()
        .unwrap();
    let r = runtime::try_go(|| -> u32 { panic!("small {}", std::hint::black_box(16)) })
        .expect("max_stacks(1) allows one G")
        .join();
    println!("joined={}", if r.is_err() { "err" } else { "ok" });
    // The stack comes back once the G's M has left it, microseconds after
    // `join` returns: one G again, and a second at once is refused.
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let first = loop {
        let w2 = wg.clone();
        match runtime::try_go(move || w2.wait()) {
            Ok(h) => break h,
            Err(e) if std::time::Instant::now() > until => panic!("one G: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    match runtime::try_go(|| ()) {
        Ok(_) => println!("second=ok"),
        Err(e) => println!("second={e}"),
    }
    wg.done();
    first.join().unwrap();
    println!("done=ok");
}

/// Symptom: a panic in a callback from a foreign thread before any `go()`
/// is reported as `thread '<unnamed>'`: the hook that names Gs was only
/// installed by the first `go()`.
pub fn callback_panic_first() {
    let r = std::thread::spawn(|| runtime::ffi::callback(|| panic!("in a callback")))
        .join()
        .expect("the foreign thread survives");
    match r {
        Err(runtime::ffi::CallbackError::Panicked(p)) => {
            println!("payload={:?}", p.downcast_ref::<&str>());
        }
        other => println!("result={other:?}"),
    }
    println!("after={}", runtime::go(|| 1).join().unwrap());
}

/// Symptom: stacks are reserved in 1 GiB chunks, so under `ulimit -v` far
/// fewer Gs fit than the limit allows, and the error does not say what
/// would help; or `try_go` succeeds and `malloc` then aborts.
pub fn address_space_limit() {
    let limit: u64 = std::env::var("AS_LIMIT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        << 20;
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: lowering our own address-space limit; lim is valid.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let mut hs = Vec::new();
    let err = loop {
        let w = wg.clone();
        match runtime::try_go(move || w.wait()) {
            Ok(h) => hs.push(h),
            Err(e) => break e,
        }
    };
    println!("spawned={}", hs.len());
    println!("error={err}");
    println!("vm_kib={}", vm_size_kib());
    // The process goes on: allocation, and spawning once stacks are back.
    let v = vec![1u8; 8 << 20];
    println!("malloc={}", v.len());
    wg.done();
    for h in hs.drain(..) {
        h.join().unwrap();
    }
    println!("after={}", runtime::go(|| 5).join().unwrap());
}

fn vm_size_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Symptom: foreign threads that bound an M and then masked every signal
/// never answer the crash relay, and the watchdog names only one of them.
/// Run with `GORT_TRACEBACK=crash`.
pub fn silent_foreign_threads() {
    let gate = Arc::new(Gate::default());
    let ids = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..3 {
        let (gate, ids) = (gate.clone(), ids.clone());
        std::thread::spawn(move || {
            runtime::ffi::callback(|| ()).expect("callback");
            // SAFETY: blocking every signal on this thread; the sets are
            // valid.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
            }
            let m = runtime::ffi::thread_m_id().expect("bound");
            // SAFETY: gettid has no preconditions.
            ids.lock().unwrap().push((m, unsafe { libc::gettid() }));
            gate.wait();
        });
    }
    while ids.lock().unwrap().len() < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    for (m, tid) in ids.lock().unwrap().iter() {
        println!("silent=m={m} tid={tid}");
    }
    use std::io::Write;
    std::io::stdout().flush().ok();
    runtime::go(crate::crash_scenarios::crash_here_with_null_read)
        .join()
        .ok();
}

/// What a forked child did, from its exit status.
#[derive(Debug, Default)]
struct ForkOutcomes {
    spawn_refused: usize,
    park_refused: usize,
    exec_ok: usize,
    other: Vec<String>,
    hung: usize,
}

/// Symptom: `fork()` in a G while other Gs spawn on other threads: the
/// child hangs in `spawn` on a lock that a thread which did not come along
/// held at the fork, or hangs once its G parks. The child must get a clear
/// refusal instead, and fork-then-exec must keep working.
pub fn fork_in_g() {
    let forks: usize = std::env::var("FORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Other threads busy in the runtime's locks (spawning, joining,
    // sleeping) at the moments of the forks.
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            runtime::go(move || {
                while !stop.load(Ordering::Relaxed) {
                    let hs: Vec<_> = (0..8).map(|i| runtime::go(move || i)).collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                    runtime::sleep(Duration::from_micros(50));
                }
            })
        })
        .collect();
    let outcomes = runtime::go(move || {
        let true_bin = std::ffi::CString::new("/bin/true").unwrap();
        let argv = [true_bin.as_ptr(), std::ptr::null()];
        let mut o = ForkOutcomes::default();
        for i in 0..forks {
            // SAFETY: the child only calls the runtime (which must refuse
            // cleanly), exec or _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                if i % 3 == 2 {
                    // SAFETY: argv is a null-terminated array of C strings
                    // made before the fork.
                    unsafe { libc::execv(true_bin.as_ptr(), argv.as_ptr()) };
                    // SAFETY: _exit in the child.
                    unsafe { libc::_exit(20) };
                }
                let code = match runtime::try_go(|| ()) {
                    Err(runtime::SpawnError::ForkedChild) => 10,
                    Ok(_) => 11,
                    Err(_) => 12,
                };
                runtime::yield_now();
                if i % 3 == 0 {
                    // SAFETY: _exit in the child.
                    unsafe { libc::_exit(code) };
                }
                // Parks: refused with a fatal error, exit status 2.
                runtime::sleep(Duration::from_millis(1));
                // SAFETY: _exit in the child.
                unsafe { libc::_exit(13) };
            }
            assert!(pid > 0, "fork failed");
            let deadline = std::time::Instant::now() + tests::scaled(Duration::from_secs(10));
            let status = loop {
                let mut st = 0;
                // SAFETY: waitpid on our own child; st is a valid out-pointer.
                if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                    break Some(st);
                }
                if std::time::Instant::now() > deadline {
                    // SAFETY: killing and reaping our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut st, 0);
                    }
                    break None;
                }
                runtime::sleep(Duration::from_micros(200));
            };
            match status {
                None => o.hung += 1,
                Some(st) if libc::WIFEXITED(st) => match (i % 3, libc::WEXITSTATUS(st)) {
                    (0, 10) => o.spawn_refused += 1,
                    (1, 2) => o.park_refused += 1,
                    (2, 0) => o.exec_ok += 1,
                    (k, c) => o.other.push(format!("case {k} exit {c}")),
                },
                Some(st) => o.other.push(format!("status {st:#x}")),
            }
        }
        o
    })
    .join()
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in busy {
        h.join().unwrap();
    }
    println!("spawn_refused={}", outcomes.spawn_refused);
    println!("park_refused={}", outcomes.park_refused);
    println!("exec_ok={}", outcomes.exec_ok);
    println!("hung={}", outcomes.hung);
    println!("other={:?}", outcomes.other);
    println!("forks={forks}");
}

/// A panic payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
struct Code(u32);

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("panic in drop");
    }
}

/// Symptom: a panic with a payload that is not a string, or a panic in a
/// destructor, is lost, mangled, or takes the process down.
pub fn panic_payloads() {
    let r = runtime::go(|| std::panic::panic_any(Code(7))).join();
    let p = r.expect_err("the G panicked");
    println!("struct_payload={:?}", p.downcast_ref::<Code>());
    let r = runtime::go(|| std::panic::panic_any(42u64)).join();
    println!(
        "int_payload={:?}",
        r.expect_err("the G panicked").downcast_ref::<u64>()
    );
    let r = runtime::go(|| drop(PanicOnDrop)).join();
    println!(
        "drop_payload={:?}",
        r.expect_err("the G panicked").downcast_ref::<&str>()
    );
    // A callback's panic, from a foreign thread, with a struct payload.
    let r = std::thread::spawn(|| runtime::ffi::callback(|| std::panic::panic_any(Code(9))))
        .join()
        .expect("the foreign thread survives");
    match r {
        Err(runtime::ffi::CallbackError::Panicked(p)) => {
            println!("callback_payload={:?}", p.downcast_ref::<Code>());
        }
        other => println!("callback={other:?}"),
    }
    println!("after={}", runtime::go(|| 3).join().unwrap());
}

#[inline(never)]
fn panic_while_unwinding_function() {
    let _guard = PanicOnDrop;
    panic!("first panic");
}

/// Symptom: a panic in a destructor while a G unwinds (which Rust turns
/// into an abort) ends the process without saying which G.
pub fn panic_in_drop_while_unwinding() {
    runtime::GoBuilder::new()
        .name("unwinder")
        .spawn(panic_while_unwinding_function)
        .unwrap()
        .join()
        .ok();
    println!("unreachable: the process survived a panic during unwinding");
}

/// Symptom: a timeout of `Duration::MAX` overflows a deadline (a panic, or
/// a timer that fires at once).
pub fn duration_max() {
    // A G asleep for ever: parked, and the process still exits.
    runtime::go(|| runtime::sleep(Duration::MAX));
    let (tx, rx) = runtime::chan::bounded::<u32>(0);
    let t = runtime::go(move || {
        runtime::sleep(Duration::from_millis(20));
        tx.send(5).unwrap();
    });
    let got = runtime::go(move || rx.recv_timeout(Duration::MAX))
        .join()
        .unwrap();
    t.join().unwrap();
    println!("recv_timeout={got:?}");
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    let waiter = runtime::go(move || w2.wait_timeout(Duration::MAX));
    runtime::sleep(Duration::from_millis(20));
    wg.done();
    println!("wait_timeout={}", waiter.join().unwrap());
    let never = runtime::time::after(Duration::MAX);
    let r = runtime::go(move || never.recv_timeout(Duration::from_millis(30)))
        .join()
        .unwrap();
    println!("after_max={r:?}");
    // A socket deadline of Duration::MAX: data still arrives.
    let l = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = runtime::go(move || {
        use std::io::Write;
        let (mut s, _) = l.accept().unwrap();
        runtime::sleep(Duration::from_millis(20));
        s.write_all(b"x").unwrap();
    });
    let n = runtime::go(move || {
        use std::io::Read;
        let mut c = runtime::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::MAX)).unwrap();
        let mut b = [0u8; 1];
        c.read(&mut b).map(|n| (n, b[0]))
    })
    .join()
    .unwrap();
    server.join().unwrap();
    println!("read_deadline={n:?}");
    println!("sleeping_gs={}", runtime::stats().waiting_gs);
}

/// Symptom: an accept loop that runs out of file descriptors (EMFILE)
/// panics, spins, or parks for ever with the connections still queued.
pub fn emfile_accept() {
    // The runtime's start-up work (the symbol table is read from the
    // binary's file) is done before the table is filled.
    crate::wait_for_symbols();
    let l = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Two connections wait in the listen queue.
    let clients = runtime::go(move || {
        let a = runtime::net::TcpStream::connect(addr).unwrap();
        let b = runtime::net::TcpStream::connect(addr).unwrap();
        (a, b)
    })
    .join()
    .unwrap();
    // Fill the descriptor table.
    let mut filler = Vec::new();
    loop {
        // SAFETY: dup of our own stdin; the copies are closed below.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            break;
        }
        filler.push(fd);
        if filler.len() > 1_000_000 {
            println!("error=no descriptor limit");
            return;
        }
    }
    let full = l.accept().map(|_| ());
    println!("full={:?}", full.as_ref().map_err(|e| e.raw_os_error()));
    // Descriptors back: both queued connections are accepted.
    for fd in filler.drain(..) {
        // SAFETY: closing a descriptor this scenario dup'ed.
        unsafe { libc::close(fd) };
    }
    let again = runtime::go(move || {
        let first = l.accept().map(|(s, _)| s);
        let second = l.accept().map(|(s, _)| s);
        (first.map(|_| ()), second.map(|_| ()))
    })
    .join()
    .unwrap();
    println!("again={again:?}");
    drop(clients);
}

#[inline(never)]
fn blocked_in_plain_read_function(fd: i32) {
    let mut b = [0u8; 1];
    // SAFETY: a plain blocking read(2) on our own pipe, into b.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
}

/// Symptom: a SIGQUIT while a G sits in a plain blocking call (not through
/// `runtime::syscall`) hangs or loses that G's stack.
pub fn quit_in_blocking_call() {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two ends.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let rd = fds[0];
    runtime::go(move || blocked_in_plain_read_function(rd));
    // Let the G reach read(2), and sysmon take its P.
    std::thread::sleep(Duration::from_millis(100));
    println!("ready");
    use std::io::Write;
    std::io::stdout().flush().ok();
    std::thread::sleep(Duration::from_secs(30));
}

#[inline(never)]
fn mid_flight_callback_function(wg: &runtime::sync::WaitGroup) {
    wg.wait();
    // Not the body of `ten_thousand_parked_function`: identical bodies
    // would be folded into one symbol in release builds.
    std::hint::black_box(100u64);
}

#[inline(never)]
fn ten_thousand_parked_function(wg: &runtime::sync::WaitGroup) {
    wg.wait();
    std::hint::black_box(10_000u32);
}

/// Symptom: a crash with 10,000 Gs and 100 callbacks parked mid-flight on
/// foreign threads takes seconds to dump, or hangs in the relay.
pub fn crash_busy_process() {
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    for _ in 0..10_000 {
        let wg = wg.clone();
        runtime::go(move || ten_thousand_parked_function(&wg));
    }
    let in_callback = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let (wg, n) = (wg.clone(), in_callback.clone());
        std::thread::spawn(move || {
            runtime::ffi::callback(|| {
                n.fetch_add(1, Ordering::SeqCst);
                mid_flight_callback_function(&wg);
            })
        });
    }
    while in_callback.load(Ordering::SeqCst) < 100 || runtime::stats().waiting_gs < 10_100 {
        std::thread::sleep(Duration::from_millis(2));
    }
    crate::crash_relay::print_mono("crash_at");
    runtime::go(crate::crash_scenarios::crash_here_with_null_read)
        .join()
        .ok();
}

fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Symptom: thousands of short-lived foreign threads, each calling back
/// once, leak their extra Ms, threads or memory.
pub fn short_lived_foreign_threads() {
    let total: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let batch = 16;
    let calls = Arc::new(AtomicUsize::new(0));
    let run = |n: usize| {
        for start in (0..n).step_by(batch) {
            let ts: Vec<_> = (start..n.min(start + batch))
                .map(|_| {
                    let calls = calls.clone();
                    std::thread::spawn(move || {
                        runtime::ffi::callback(|| {
                            let v = runtime::go(|| 1).join().unwrap();
                            calls.fetch_add(v, Ordering::Relaxed);
                        })
                        .unwrap();
                    })
                })
                .collect();
            for t in ts {
                t.join().unwrap();
            }
        }
    };
    // Warm up (the pool, the allocator's arenas), then measure.
    run(total / 10);
    std::thread::sleep(Duration::from_millis(50));
    let (threads0, rss0, mcount0) = (threads_now(), rss_kib(), runtime::stats().mcount);
    run(total - total / 10);
    std::thread::sleep(Duration::from_millis(50));
    let s = runtime::stats();
    println!("calls={}", calls.load(Ordering::Relaxed));
    println!("threads_before={threads0}");
    println!("threads_after={}", threads_now());
    println!("rss_growth_kib={}", rss_kib().saturating_sub(rss0));
    println!("mcount_before={mcount0}");
    println!("mcount_after={}", s.mcount);
    println!("extra_m_in_use={}", s.extra_m_in_use);
}

/// Symptom: a callback from a foreign thread that overflows its G's stack
/// dies with a bare SIGSEGV, or is reported as a plain thread's overflow.
pub fn callback_stack_overflow() {
    std::thread::spawn(|| runtime::ffi::callback(|| crate::crash_scenarios::recurse_forever(0)))
        .join()
        .ok();
}

/// Symptom: a forked child that crashes in crash mode waits 5 s for the
/// relay to reach Ms whose threads stayed in the parent. Run with
/// `GORT_TRACEBACK=crash`.
pub fn crash_in_forked_child() {
    // Ms with threads in the parent, which the child must not wait for.
    let busy: Vec<_> = (0..3)
        .map(|_| runtime::go(|| std::thread::sleep(Duration::from_millis(300))))
        .collect();
    let (status, took) = runtime::go(|| {
        // SAFETY: the child only faults, which is the point.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            crate::crash_scenarios::crash_here_with_null_read();
            // SAFETY: _exit in the child.
            unsafe { libc::_exit(0) };
        }
        let t = std::time::Instant::now();
        let mut st = 0;
        // SAFETY: waiting for our own child; st is a valid out-pointer.
        runtime::syscall(|| unsafe { libc::waitpid(pid, &mut st, 0) });
        (st, t.elapsed())
    })
    .join()
    .unwrap();
    for h in busy {
        h.join().unwrap();
    }
    println!("child_signal={}", libc::WTERMSIG(status));
    println!("child_ms={}", took.as_millis());
}
