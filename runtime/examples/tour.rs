//! A tour of gort: spawn 100,000 green threads, park them all, wake them,
//! and measure what it cost; call into the runtime from threads it did not
//! create; and show the crash dump of a child process that segfaults in a G.
//! Run with `cargo run --release --example tour`.
//!
//! Pass a count to change the number of Gs: `... --example tour -- 1000000`.
//! With `--check` it exits non-zero unless every G was parked at the same
//! time and every G ran exactly once (CI runs it with a million Gs).

use runtime::sync::WaitGroup;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The child process of part 5: a G reads a null pointer.
fn crash_child() {
    let parked: Vec<_> = (0..3)
        .map(|_| runtime::go(|| runtime::sleep(Duration::from_secs(60))))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let h = runtime::GoBuilder::new()
        .name("will-crash")
        .spawn(read_null)
        .unwrap();
    h.join().ok();
    drop(parked);
}

#[inline(never)]
fn read_null() -> u8 {
    let p = std::hint::black_box(std::ptr::null::<u8>());
    // SAFETY: none: the child exists to show the crash dump.
    unsafe { std::ptr::read_volatile(p) }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--crash-child") {
        return crash_child();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let check = args.iter().any(|a| a == "--check");
    let s = runtime::stats();
    println!(
        "gort tour: {n} green threads on {} Ps ({} CPUs), stack guards: {:?}",
        s.procs,
        num_cpus(),
        s.guard.unwrap()
    );

    // 1. Spawn n Gs that each park on a wait group.
    let parked = Arc::new(WaitGroup::new());
    let gate = Arc::new(WaitGroup::new());
    let sum = Arc::new(AtomicU64::new(0));
    gate.add(1);
    parked.add(n as i64);
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n as u64)
        .map(|i| {
            let (parked, gate, sum) = (parked.clone(), gate.clone(), sum.clone());
            runtime::go(move || {
                parked.done();
                gate.wait();
                sum.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    parked.wait();
    // Every G has called done(); wait until the last ones are really parked.
    let deadline = Instant::now() + Duration::from_secs(60);
    while runtime::stats().waiting_gs < n {
        if Instant::now() > deadline {
            eprintln!(
                "tour: only {} of {n} Gs parked after 60 s",
                runtime::stats().waiting_gs
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let spawned = t0.elapsed();
    let rss1 = rss_bytes();
    let st = runtime::stats();
    println!(
        "spawned and parked {n} Gs in {:.1} ms ({:.0} ns per G); {} waiting, {} Ms",
        spawned.as_secs_f64() * 1e3,
        spawned.as_nanos() as f64 / n as f64,
        st.waiting_gs,
        st.mcount
    );
    println!(
        "RSS grew by {:.1} MiB: {:.2} KiB per parked G (stack page + G + closure)",
        (rss1.saturating_sub(rss0)) as f64 / (1 << 20) as f64,
        (rss1.saturating_sub(rss0)) as f64 / 1024.0 / n as f64
    );

    // 2. Wake them all and join.
    let t1 = Instant::now();
    gate.done();
    for h in handles {
        h.join().expect("a G panicked");
    }
    let woke = t1.elapsed();
    let expect = (n as u64) * (n as u64 - 1) / 2;
    assert_eq!(
        sum.load(Ordering::Relaxed),
        expect,
        "every G ran exactly once"
    );
    println!(
        "woke and joined {n} Gs in {:.1} ms ({:.0} ns per G); checksum ok",
        woke.as_secs_f64() * 1e3,
        woke.as_nanos() as f64 / n as f64
    );

    if check {
        println!("check: {n} Gs were parked at the same time, each ran once: ok");
    }

    // 3. Sleeping Gs overlap: 10,000 sleeps of 50 ms.
    let t2 = Instant::now();
    let sleepers: Vec<_> = (0..10_000)
        .map(|_| runtime::go(|| runtime::sleep(Duration::from_millis(50))))
        .collect();
    for h in sleepers {
        h.join().unwrap();
    }
    println!(
        "10,000 Gs sleeping 50 ms each finished in {:.0} ms",
        t2.elapsed().as_secs_f64() * 1e3
    );

    // 4. A panic in a G is contained and reported to its joiner.
    let h = runtime::GoBuilder::new()
        .name("tour-panic")
        .spawn(|| -> () { panic!("a G may panic") })
        .unwrap();
    println!("a panicking G's join returned Err: {}", h.join().is_err());

    // 5. Foreign threads: threads the runtime did not create call in; each
    //    callback runs as a G that spawns, joins and sleeps.
    let t3 = Instant::now();
    let foreign: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                for j in 0..100u64 {
                    runtime::ffi::callback(move || {
                        let child = runtime::go(move || i * 1000 + j);
                        runtime::sleep(Duration::from_micros(100));
                        child.join().unwrap()
                    })
                    .expect("callback");
                }
            })
        })
        .collect();
    for t in foreign {
        t.join().unwrap();
    }
    let s = runtime::stats();
    println!(
        "8 foreign threads x 100 callbacks (each spawns, sleeps, joins) in {:.0} ms; extra Ms: {} pooled, {} in use",
        t3.elapsed().as_secs_f64() * 1e3,
        s.extra_m_count,
        s.extra_m_in_use
    );

    // 6. A crash dump: a child process segfaults inside a G.
    let exe = std::env::current_exe().expect("current exe");
    let out = std::process::Command::new(exe)
        .arg("--crash-child")
        .env("GORT_TRACEBACK", "all")
        .output()
        .expect("run the crash child");
    let dump = String::from_utf8_lossy(&out.stderr);
    println!(
        "a child process crashed in a G (exit status {:?}); the first lines of its dump:",
        out.status.code()
    );
    for line in dump.lines().filter(|l| !l.trim().is_empty()).take(16) {
        println!("  | {line}");
    }
    let s = runtime::stats();
    println!(
        "final: {} Ms, {} idle; {} stacks pooled for reuse",
        s.mcount, s.idle_ms, s.pooled_stacks
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
