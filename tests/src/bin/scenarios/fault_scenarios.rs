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
    // The stack came back: one G again, and a second at once is refused.
    let wg = Arc::new(runtime::sync::WaitGroup::new());
    wg.add(1);
    let w2 = wg.clone();
    let first = runtime::try_go(move || w2.wait()).expect("one G");
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
