//! Plain blocking code inside Gs (issue 14): a G that blocks its thread in
//! the kernel or on a std lock, without any runtime wrapper, must lose its P
//! within tens of microseconds, and nothing that blocks may hang the runtime.
//! Part of the `scenarios` program; `tests/tests/sched_blocking.rs` runs
//! each one in a child process with a hard time limit.

use std::ffi::c_void;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

type Cb = unsafe extern "C" fn(*mut c_void);

unsafe extern "C" {
    fn c_callback_threads(n: i32, stack_kib: i32, cb: Cb, arg: *mut c_void) -> i32;
}

/// An integer from the environment, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the runtime and gives its threads (sysmon above all) time to
/// start, so that a measurement does not include the start-up: under
/// qemu-user a thread takes tens of milliseconds to start.
fn warm_up() {
    runtime::go(|| ()).join().unwrap();
    std::thread::sleep(tests::scaled(Duration::from_millis(20)));
}

/// The P retake counters, printed as `key=value` lines with a prefix.
fn print_retakes(prefix: &str, s: &runtime::Stats) {
    println!("{prefix}retakes_kernel={}", s.retakes_kernel);
    println!("{prefix}retakes_slice={}", s.retakes_slice);
    println!("{prefix}retakes_syscall={}", s.retakes_syscall);
}

/// Symptom guarded: a G that wakes another and then makes a plain blocking
/// call (`std::thread::sleep`) keeps the only P until a whole 10 ms slice
/// ends, so the woken G waits milliseconds (13.6 ms measured) instead of the
/// tens of microseconds Go needs to retake a P from a syscall.
pub fn stall_bound() {
    let iters = env_or("ITERS", 9);
    warm_up();
    let delays = runtime::go(move || {
        let mut delays = Vec::with_capacity(iters);
        for _ in 0..iters {
            let (tx, rx) = runtime::chan::bounded::<Instant>(1);
            // B waits on the channel (or is still queued: either way it
            // needs the P that A holds while A sleeps).
            let b = runtime::go(move || rx.recv().unwrap().elapsed());
            runtime::yield_now();
            tx.send(Instant::now()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            delays.push(b.join().unwrap());
        }
        delays
    })
    .join()
    .unwrap();
    let mut us: Vec<u128> = delays.iter().map(|d| d.as_micros()).collect();
    println!(
        "delays_us={}",
        us.iter().map(u128::to_string).collect::<Vec<_>>().join(",")
    );
    us.sort_unstable();
    println!("median_us={}", us[us.len() / 2]);
}

/// Counts the callbacks that got through the barrier.
static THROUGH: AtomicUsize = AtomicUsize::new(0);

/// A callback that waits on the `std::sync::Barrier` its argument points at.
unsafe extern "C" fn wait_on_barrier(arg: *mut c_void) {
    // SAFETY: arg points at the Barrier owned by `callback_barrier`, which
    // joins every thread before dropping it.
    let b = unsafe { &*(arg as *const Barrier) };
    b.wait();
    THROUGH.fetch_add(1, Ordering::SeqCst);
}

/// Symptom guarded: callbacks from threads gort did not create keep their P
/// while they block in plain code, so with N callbacks on one
/// `Barrier::new(N)` and fewer Ps than N, the ones holding the Ps wait for
/// the others, which never get a P: the process hangs forever (the smallest
/// case: 2 threads, `GORT_MAXPROCS=1`).
pub fn callback_barrier() {
    let n = env_or("THREADS", 2);
    let barrier = Barrier::new(n);
    let t = Instant::now();
    // SAFETY: wait_on_barrier is a valid callback; the barrier outlives
    // the threads (c_callback_threads joins them all before returning).
    let st = unsafe {
        c_callback_threads(
            n as i32,
            256,
            wait_on_barrier,
            &barrier as *const Barrier as *mut c_void,
        )
    };
    println!("status={st}");
    println!("through={}", THROUGH.load(Ordering::SeqCst));
    println!("ms={}", t.elapsed().as_millis());
    println!("extra_m_in_use={}", runtime::stats().extra_m_in_use);
}

/// Symptom guarded: Gs that wait for each other through std primitives
/// (they block their thread in a futex, not in the runtime) stop making
/// progress on one P, where OS threads would: a producer and consumer on a
/// `std::sync::mpsc` rendezvous channel.
pub fn std_mpsc() {
    let n = env_or("ITEMS", 2000) as u64;
    let t = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<u64>(0);
    let producer = runtime::go(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let consumer = runtime::go(move || {
        let (mut count, mut sum) = (0u64, 0u64);
        for v in rx {
            count += 1;
            sum += v;
        }
        (count, sum)
    });
    producer.join().unwrap();
    let (count, sum) = consumer.join().unwrap();
    println!("count={count}");
    println!("sum={sum}");
    println!("expected_sum={}", n * (n - 1) / 2);
    println!("ms={}", t.elapsed().as_millis());
}

/// Symptom guarded: as `std_mpsc`, with two Gs taking turns through a
/// `std::sync::Mutex` and `Condvar` (each waits in the kernel for the other).
pub fn std_condvar() {
    let rounds = env_or("ROUNDS", 1000);
    let t = Instant::now();
    // (whose turn: 0 or 1, hand-offs done)
    let state = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    let hs: Vec<_> = (0..2)
        .map(|me| {
            let state = state.clone();
            runtime::go(move || {
                let (mu, cv) = &*state;
                for _ in 0..rounds {
                    let mut s = cv.wait_while(mu.lock().unwrap(), |s| s.0 != me).unwrap();
                    s.0 = 1 - me;
                    s.1 += 1;
                    cv.notify_all();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("handoffs={}", state.0.lock().unwrap().1);
    println!("expected={}", 2 * rounds);
    println!("ms={}", t.elapsed().as_millis());
}

/// Symptom guarded: as `std_mpsc`, with a `std::sync::Barrier` across 50
/// Gs: each G that reaches it blocks its thread until all 50 arrive, so the
/// last ones must get the P from Ms blocked in the kernel.
pub fn std_barrier() {
    let n = 50;
    let rounds = env_or("ROUNDS", 3);
    let t = Instant::now();
    let barrier = Arc::new(Barrier::new(n));
    let passed = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, passed, leaders) = (barrier.clone(), passed.clone(), leaders.clone());
            runtime::go(move || {
                for _ in 0..rounds {
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                    passed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    println!("passed={}", passed.load(Ordering::SeqCst));
    println!("leaders={}", leaders.load(Ordering::SeqCst));
    println!("expected_passed={}", n * rounds);
    println!("ms={}", t.elapsed().as_millis());
}

/// Symptom guarded: when handing the P of a kernel-blocked M to another M
/// would exceed `GORT_MAX_THREADS`, the runtime aborts (or hangs for good)
/// instead of leaving the P with the blocked M until its call returns.
pub fn thread_limit_stall() {
    let gs = env_or("GS", 16);
    let limit = env_or("GORT_MAX_THREADS", 0);
    let t = Instant::now();
    let max_threads = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Samples how many Ms own a thread while the sleepers run.
    let watch = {
        let (max_threads, done) = (max_threads.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                max_threads.fetch_max(runtime::stats().threaded_ms(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let slept = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..gs)
        .map(|_| {
            let slept = slept.clone();
            runtime::go(move || {
                std::thread::sleep(Duration::from_millis(300));
                slept.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // Runtime work still runs after the stalls.
    let after = runtime::go(|| 6 * 7).join().unwrap();
    done.store(true, Ordering::SeqCst);
    watch.join().unwrap();
    println!("slept={}", slept.load(Ordering::SeqCst));
    println!("after={after}");
    println!("limit={limit}");
    println!("max_threads={}", max_threads.load(Ordering::SeqCst));
    println!("stalls={}", runtime::stats().thread_limit_stalls);
    println!("ms={}", t.elapsed().as_millis());
}

/// Spins without any runtime call until `until`.
#[inline(never)]
fn spin_until(until: Instant) {
    let mut spins = 0u64;
    while Instant::now() < until {
        spins = std::hint::black_box(spins + 1);
    }
}

/// Symptom guarded: retakes are invisible, or counted under the wrong
/// cause. `CAUSE` picks what the G does while another G waits for the only
/// P: `kernel` (a plain `std::thread::sleep`), `slice` (user code spinning
/// for several slices), `syscall` (a sleep inside `runtime::syscall`).
pub fn retake_cause() {
    let cause = std::env::var("CAUSE").unwrap_or_default();
    // Long enough for several slices and sysmon looks even under qemu-user.
    let block = tests::scaled(Duration::from_millis(100));
    warm_up();
    let (before, after, waited) = runtime::go(move || {
        let before = runtime::stats();
        let other = runtime::go(Instant::now);
        let t = Instant::now();
        match cause.as_str() {
            "kernel" => std::thread::sleep(block),
            "slice" => spin_until(Instant::now() + block),
            "syscall" => runtime::syscall(|| std::thread::sleep(block)),
            other => panic!("CAUSE={other:?}: expected kernel, slice or syscall"),
        }
        // When the other G ran, measured from the start of the blocking.
        let ran = other.join().unwrap();
        (before, runtime::stats(), ran.saturating_duration_since(t))
    })
    .join()
    .unwrap();
    print_retakes("before_", &before);
    print_retakes("after_", &after);
    println!("other_ran_after_ms={}", waited.as_millis());
}

/// Reads one byte: the frame a dump must show for the blocked G.
#[inline(never)]
fn read_pipe_blocking(r: &mut std::io::PipeReader) -> usize {
    let mut b = [0u8; 1];
    let n = r.read(&mut b).unwrap_or(0);
    std::hint::black_box(n)
}

/// Whether thread `tid` of this process sleeps (state `S`) and has not run
/// for `quiet`: its run time in `schedstat` did not move.
fn thread_asleep(tid: i32, quiet: Duration) -> bool {
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
        // The state follows the command name, which ends at the last ')'.
        stat.rsplit_once(") ")?.1.chars().next()
    };
    let ran = || -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
        s.split_whitespace().next()?.parse().ok()
    };
    let before = ran();
    std::thread::sleep(quiet);
    state() == Some('S') && before.is_some() && ran() == before
}

/// Symptom guarded: a G blocked in a plain `read` (no runtime wrapper) is
/// shown as running, or its stack is missing from the dump: the on-call
/// engineer cannot see that it waits in the kernel, nor where.
pub fn blocked_read_dump() {
    let (mut r, w) = std::io::pipe().unwrap();
    let (tx, rx) = mpsc::channel();
    runtime::GoBuilder::new()
        .name("pipe_reader")
        .spawn(move || {
            let me = runtime::current().unwrap().id;
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            tx.send((me, runtime::ffi::thread_m_id(), tid)).unwrap();
            read_pipe_blocking(&mut r);
        })
        .unwrap();
    let (goid, m, tid) = rx.recv().unwrap();
    // Only once the reader sleeps in read(2) does a ticker want the P
    // (GORT_MAXPROCS=1): sysmon must then take it from a thread asleep in
    // the kernel, and the ticks show that it did.
    let limit = Duration::from_secs(if tests::under_qemu() { 60 } else { 10 });
    let deadline = Instant::now() + limit;
    let mut asleep = false;
    while !asleep && Instant::now() < deadline {
        asleep = thread_asleep(tid, tests::scaled(Duration::from_millis(20)));
    }
    let ticks = Arc::new(AtomicU64::new(0));
    let t2 = ticks.clone();
    runtime::go(move || {
        loop {
            runtime::sleep(Duration::from_millis(1));
            t2.fetch_add(1, Ordering::SeqCst);
        }
    });
    while ticks.load(Ordering::SeqCst) < 20 && Instant::now() < deadline + limit {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("reader_goid={goid}");
    println!("reader_m={}", m.map_or(-1, |m| m as i64));
    println!("reader_asleep={asleep}");
    println!("ticks={}", ticks.load(Ordering::SeqCst));
    println!("retakes_kernel={}", runtime::stats().retakes_kernel);
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
    drop(w);
}

/// The G the blocking log must name: blocks its thread for 50 ms.
#[inline(never)]
fn block_thread_50ms() {
    std::thread::sleep(Duration::from_millis(50));
}

/// Symptom guarded: nothing tells a user which G blocked its thread, for
/// how long and where (`GORT_BLOCKING_LOG=<threshold>`); or the log is
/// noisy (short blocks, or printed without the variable); or an invalid
/// value is silently ignored.
pub fn blocking_log() {
    warm_up();
    let slow = runtime::GoBuilder::new()
        .name("slowpoke")
        .spawn(|| {
            let id = runtime::current().unwrap().id;
            block_thread_50ms();
            id
        })
        .unwrap();
    // Blocks far below a 5 ms threshold, many times, back in the runtime
    // after each: never logged.
    let quick = runtime::GoBuilder::new()
        .name("quickstep")
        .spawn(|| {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_micros(100));
                runtime::yield_now();
            }
        })
        .unwrap();
    println!("slow_goid={}", slow.join().unwrap());
    quick.join().unwrap();
    // sysmon writes the end of a block at its next look (within 10 ms,
    // much later under qemu-user): give it time before the process ends.
    std::thread::sleep(tests::scaled(Duration::from_millis(200)));
    println!("done");
}

/// Symptom guarded: a kernel-blocked call that returns just as sysmon
/// retakes its P loses a G, runs one twice, or trips a fatal check. Gs
/// sleep 10-60 us in the kernel (about the retake delay; 20x longer under
/// qemu-user, where sysmon looks 10-50x less often) while others wait for
/// the only P; a checksum proves every step ran exactly once.
pub fn retake_race() {
    let rounds = env_or("ROUNDS", 2000) as u64;
    let scale = if tests::under_qemu() { 20 } else { 1 };
    warm_up();
    let t = Instant::now();
    let sum = Arc::new(AtomicU64::new(0));
    let mut expected = 0u64;
    let mut hs = Vec::new();
    for k in 0..6u64 {
        // Sleepers: plain kernel sleeps of varied length, each started
        // holding a P (the yield brings the G back to the runtime: without
        // it, a G whose P was retaken once would run P-less from then on).
        let sum = sum.clone();
        hs.push(runtime::go(move || {
            for i in 0..rounds {
                let us = 10 + (i * 13 + k * 7) % 51;
                std::thread::sleep(Duration::from_micros(us * scale));
                sum.fetch_add(k * 1_000_003 + i, Ordering::Relaxed);
                runtime::yield_now();
            }
        }));
        expected += (0..rounds).map(|i| k * 1_000_003 + i).sum::<u64>();
    }
    for k in 0..4u64 {
        // Queued work: yields and short runtime sleeps keep the P in demand.
        let sum = sum.clone();
        hs.push(runtime::go(move || {
            for i in 0..rounds * 2 {
                if i % 16 == 0 {
                    runtime::sleep(Duration::from_micros(20));
                } else {
                    runtime::yield_now();
                }
                sum.fetch_add(k + 1, Ordering::Relaxed);
            }
        }));
        expected += (k + 1) * rounds * 2;
    }
    for h in hs {
        h.join().unwrap();
    }
    println!("sum={}", sum.load(Ordering::SeqCst));
    println!("expected={expected}");
    print_retakes("", &runtime::stats());
    println!("ms={}", t.elapsed().as_millis());
}

/// Pure CPU work, `n` rounds, no runtime call.
#[inline(never)]
fn cpu_work(n: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        x = std::hint::black_box(x.rotate_left(7) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Rounds of `cpu_work` that take about `target` of CPU time on this
/// thread (CPU time, not wall: on a loaded machine the wall clock also
/// counts the time other processes ran).
fn calibrate(target: Duration) -> u64 {
    let mut n = 1u64 << 16;
    loop {
        let t = thread_cpu_time();
        cpu_work(n);
        let took = thread_cpu_time() - t;
        if took >= Duration::from_millis(50) {
            return (n as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        n *= 2;
    }
}

/// Pins the calling thread, and so every thread it starts later (the
/// runtime's Ms and sysmon inherit it), to the first CPU it may run on.
/// Returns that CPU.
fn pin_to_one_cpu() -> usize {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid out-pointer of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: CPU_ISSET reads the set within its size.
    let cpu = (0..libc::CPU_SETSIZE as usize)
        .find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .expect("no CPU in the affinity mask");
    // SAFETY: as above, a valid empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut one) };
    // SAFETY: one is a valid set of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
    cpu
}

/// Median wall time of three runs of `cpu_work(n)` on the calling G.
fn median_work_time(n: u64) -> Duration {
    let mut t: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(cpu_work(n));
            start.elapsed()
        })
        .collect();
    t.sort_unstable();
    t[1]
}

/// Run time (ns) of thread `tid` from its `schedstat`, 0 if unreadable.
fn thread_run_ns(tid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Median, over three runs of `cpu_work(n)` on the calling G, of its
/// share of the CPU time that it and the threads `others` got meanwhile.
fn median_cpu_share(n: u64, others: &[i32]) -> f64 {
    let others_ns = || others.iter().map(|&t| thread_run_ns(t)).sum::<u64>();
    let mut shares: Vec<f64> = (0..3)
        .map(|_| {
            let (o0, w0) = (others_ns(), thread_cpu_time());
            std::hint::black_box(cpu_work(n));
            let w = (thread_cpu_time() - w0).as_nanos() as f64;
            let o = others_ns().saturating_sub(o0) as f64;
            w / (w + o)
        })
        .collect();
    shares.sort_by(f64::total_cmp);
    shares[1]
}

/// Symptom guarded: with `GORT_MAXPROCS=1`, CPU-bound Gs whose P sysmon
/// took after a slice keep running on their own threads at full weight, so
/// the G that holds the P shares its CPU with them: `GORT_MAXPROCS` no
/// longer bounds the Gs running at once. The process is pinned to one CPU
/// so that the P-less threads cannot hide on an idle second CPU. A fixed
/// piece of work on the P-holding G is timed alone and beside three such
/// hogs (4x as long if they competed as equals); and, which the rest of a
/// loaded machine cannot blur, its share of the CPU time it and the hogs
/// got while it ran (1/4 as equals) is reported.
pub fn procs_bound_cpu() {
    let cpu = pin_to_one_cpu();
    let n = calibrate(Duration::from_millis(100));
    let (alone, loaded, share, hogs_ran, slice_retakes) = runtime::go(move || {
        let alone = median_work_time(n);
        let stop = Arc::new(AtomicBool::new(false));
        let tids = Arc::new(Mutex::new(Vec::new()));
        let before = runtime::stats().retakes_slice;
        let hogs: Vec<_> = (0..3)
            .map(|_| {
                let (stop, tids) = (stop.clone(), tids.clone());
                // Never a runtime call: only sysmon can take their P, and
                // each stays on the thread it started on.
                runtime::go(move || {
                    // SAFETY: gettid has no preconditions.
                    tids.lock().unwrap().push(unsafe { libc::gettid() });
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::black_box(cpu_work(10_000));
                    }
                })
            })
            .collect();
        // The hogs take turns on the P until sysmon has taken it from
        // each (a slice each), then it is free again for this G.
        runtime::sleep(tests::scaled(Duration::from_millis(50)));
        let loaded = median_work_time(n);
        let tids = tids.lock().unwrap().clone();
        let share = median_cpu_share(n, &tids);
        // Each hog ran at least a slice: proof that their run time is read.
        let hogs_ran: u64 = tids.iter().map(|&t| thread_run_ns(t)).sum();
        let retakes = runtime::stats().retakes_slice - before;
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        (alone, loaded, share, hogs_ran, retakes)
    })
    .join()
    .unwrap();
    println!("cpu={cpu}");
    println!("alone_ms={:.1}", alone.as_secs_f64() * 1e3);
    println!("loaded_ms={:.1}", loaded.as_secs_f64() * 1e3);
    println!("ratio={:.3}", loaded.as_secs_f64() / alone.as_secs_f64());
    println!("share={share:.3}");
    println!("hogs_ran_ms={}", hogs_ran / 1_000_000);
    println!("retakes_slice={slice_retakes}");
}

/// Symptom guarded: many Gs looping on plain `std::thread::sleep` stall a
/// G that only needs the P briefly every 5 ms (255 ms gaps measured):
/// many simultaneous blockers must cost the others no more than one does.
pub fn procs_bound_ticker() {
    let blockers = 50;
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..blockers)
        .map(|k| {
            let stop = stop.clone();
            runtime::go(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_micros(500 + k * 20));
                    // Back in the runtime between sleeps, as real code is
                    // (a channel, a lock, a spawn): the G needs a P again.
                    runtime::yield_now();
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let ticks = env_or("TICKS", 200);
    let gaps = runtime::go(move || {
        let mut last = Instant::now();
        let mut gaps = Vec::with_capacity(ticks);
        for _ in 0..ticks {
            runtime::sleep(Duration::from_millis(5));
            let now = Instant::now();
            gaps.push(now - last);
            last = now;
        }
        gaps
    })
    .join()
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let mut ms: Vec<f64> = gaps.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    println!("ticks={}", ms.len());
    println!("max_gap_ms={:.1}", ms[ms.len() - 1]);
    println!("median_gap_ms={:.1}", ms[ms.len() / 2]);
    println!("blocker_rounds={rounds}");
}
