//! Scenarios for living with the ecosystem: futures, thread-bound values,
//! OS signals, child processes, live dumps.

use std::time::Duration;

/// This module's scenarios, by name (looked up after `main`'s table).
pub const SCENARIOS: &[(&str, fn())] = &[
    ("eco_block_on_one_p", block_on_one_p),
    ("eco_thread_bound_park", thread_bound_park),
    ("eco_thread_bound_locked", thread_bound_locked),
    ("eco_signal_ctrl_c", signal_ctrl_c),
    ("eco_signal_stop_restores", signal_stop_restores),
    ("eco_signal_quit_still_dumps", signal_quit_still_dumps),
    ("eco_process_pipes_one_p", process_pipes_one_p),
    ("eco_process_no_zombie", process_no_zombie),
];

/// Symptom: with one P, a G waiting in `block_on` keeps the M, so the G
/// that would send (on the same P) never runs: a hang.
pub fn block_on_one_p() {
    let (tx, rx) = async_channel::bounded::<u64>(1);
    let consumer = runtime::go(move || {
        let mut sum = 0;
        while let Ok(v) = runtime::block_on(rx.recv()) {
            sum += v;
        }
        sum
    });
    let producer = runtime::go(move || {
        for i in 0..100 {
            runtime::block_on(tx.send(i)).unwrap();
        }
    });
    producer.join().unwrap();
    println!("sum={}", consumer.join().unwrap());
}

/// Symptom: a `ThreadBound` marker held across a park goes unnoticed in a
/// debug build (the value may be used on another thread).
pub fn thread_bound_park() {
    runtime::go(|| {
        let _borrow = runtime::ThreadBound::new();
        runtime::sleep(Duration::from_millis(1));
    })
    .join()
    .unwrap();
    println!("finished=1");
}

/// A G locked to its thread may keep thread-bound values across parks.
pub fn thread_bound_locked() {
    runtime::go(|| {
        runtime::lock_os_thread();
        let _borrow = runtime::ThreadBound::new();
        let t = std::thread::current().id();
        runtime::sleep(Duration::from_millis(1));
        assert_eq!(t, std::thread::current().id());
        runtime::unlock_os_thread();
    })
    .join()
    .unwrap();
    println!("finished=1");
}

/// Raises `sig` at this process.
fn raise(sig: i32) {
    // SAFETY: kill(2) to ourselves.
    unsafe { libc::kill(libc::getpid(), sig) };
}

/// Symptom: Ctrl-C kills a program that asked for it on a channel, or the
/// program cannot finish its Gs and exit cleanly. Also: SIGHUP, SIGUSR1
/// and SIGUSR2 arrive, each on the channel that asked for it.
pub fn signal_ctrl_c() {
    use runtime::signal::{self, Signal};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (tx, rx) = runtime::chan::bounded(4);
    signal::notify(&tx, &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP]).unwrap();
    let (utx, urx) = runtime::chan::bounded(4);
    signal::notify(&utx, &[Signal::SIGUSR1, Signal::SIGUSR2]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, work) = (stop.clone(), work.clone());
            runtime::go(move || {
                while !stop.load(Ordering::Relaxed) {
                    work.fetch_add(1, Ordering::Relaxed);
                    runtime::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    raise(libc::SIGUSR1);
    raise(libc::SIGUSR2);
    for _ in 0..2 {
        let s = urx
            .recv_timeout(Duration::from_secs(20))
            .expect("SIGUSR1/2 not delivered");
        println!("user={s}");
    }
    raise(libc::SIGHUP);
    println!(
        "hup={}",
        rx.recv_timeout(Duration::from_secs(20))
            .expect("SIGHUP not delivered")
    );
    // The workers run while the program waits for its signal: "ready" (the
    // harness's cue to send SIGINT) only once they have.
    while work.load(Ordering::Relaxed) < 100 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    let sig = rx.recv().unwrap();
    println!("got={sig}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!("work_done={}", u64::from(work.load(Ordering::Relaxed) > 0));
    println!("clean=1");
}

/// Symptom: after `stop`, a signal is still swallowed instead of taking
/// its default action again.
pub fn signal_stop_restores() {
    use runtime::signal::{self, Signal};
    let (tx, rx) = runtime::chan::bounded(1);
    signal::notify(&tx, &[Signal::SIGUSR2]).unwrap();
    raise(libc::SIGUSR2);
    println!(
        "first={}",
        rx.recv_timeout(Duration::from_secs(20)).unwrap()
    );
    signal::stop(&tx);
    raise(libc::SIGUSR2);
    // The default action of SIGUSR2 ends the process before this.
    std::thread::sleep(Duration::from_secs(20));
    println!("survived=1");
}

/// Symptom: asking for signals on a channel disturbs crash tracing: a
/// SIGQUIT no longer dumps every G.
pub fn signal_quit_still_dumps() {
    use runtime::signal::{self, Signal};
    let (tx, _rx) = runtime::chan::bounded(1);
    signal::notify(&tx, &[Signal::SIGINT, Signal::SIGTERM]).unwrap();
    runtime::go(|| runtime::sleep(Duration::from_secs(3600)));
    while runtime::stats().waiting_gs < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(30));
}

/// Symptom: with one P, a G writing to a child's stdin blocks the only M
/// while the G that should read the child's stdout never runs (a hang).
pub fn process_pipes_one_p() {
    use std::io::{Read, Write};
    let mut c = runtime::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let mut stdout = c.stdout.take().unwrap();
    let writer = runtime::go(move || {
        let chunk = [b'x'; 8192];
        for _ in 0..128 {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let reader = runtime::go(move || {
        let mut n = 0usize;
        let mut buf = [0u8; 16384];
        loop {
            match stdout.read(&mut buf).unwrap() {
                0 => return n,
                k => n += k,
            }
        }
    });
    writer.join().unwrap();
    println!("echoed={}", reader.join().unwrap());
    println!("status={}", c.wait().unwrap().code().unwrap_or(-1));
}

/// Children of this process that are zombies now.
fn zombies() -> usize {
    let me = std::process::id().to_string();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<_> = rest.split_whitespace().collect();
        if f.len() > 1 && f[0] == "Z" && f[1] == me {
            n += 1;
        }
    }
    n
}

/// Symptom: a `Child` dropped before it exited is never reaped (a zombie
/// for the life of the process), with or without kill_on_drop.
pub fn process_no_zombie() {
    for _ in 0..5 {
        let c = runtime::process::Command::new("sleep")
            .arg("0.1")
            .spawn()
            .unwrap();
        drop(c);
        let c = runtime::process::Command::new("sleep")
            .arg("100")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        drop(c);
    }
    // Give the reapers time to see the exits.
    let start = std::time::Instant::now();
    while zombies() > 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("zombies={}", zombies());
}
