//! What `file:line` in crash dumps costs (docs/benchmarks.md, "Crash
//! symbolization"):
//!
//! - at start-up: starting the symbolizer thread (`signals::resolve::start`,
//!   which the runtime's first use does; nothing else is prepared), and the
//!   runtime's whole first use for scale;
//! - at crash time: the symbolizer's first answer (it reads this binary's
//!   debug info, lazily) and a second one for other addresses, in wall
//!   time and in the process's CPU time (the asking thread sleeps, so that
//!   is the symbolizer's work, a figure a loaded machine does not inflate).
//!
//! Run it (several times: one process measures once) from a debug and a
//! release build: `cargo run [--release] --bin symbolizer_cost`. Prints one
//! `key=value` line per figure.

use std::time::{Duration, Instant};

#[inline(never)]
fn first_target(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(7)
}

#[inline(never)]
fn second_target(x: u64) -> u64 {
    std::hint::black_box(x).rotate_left(3)
}

/// CPU time of the whole process (the asking thread sleeps meanwhile, so
/// a difference is the symbolizer's work, whatever the machine's load).
fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn ask(addrs: &[usize]) -> (Duration, Duration, bool) {
    let c = cpu();
    let t = Instant::now();
    let mut req = signals::resolve::Request::begin().expect("the symbolizer thread runs");
    for &a in addrs {
        req.add(a);
    }
    let answer = req.send(30_000_000_000);
    let took = t.elapsed();
    let cpu_took = cpu().saturating_sub(c);
    let named = answer.is_some_and(|a| {
        addrs.iter().all(|&p| {
            a.frames(p)
                .is_some_and(|(mut f, _)| f.any(|s| s.line > 0 && !s.file.is_empty()))
        })
    });
    (took, cpu_took, named)
}

fn main() {
    let exe = std::env::current_exe().unwrap();
    let size = std::fs::metadata(&exe).map_or(0, |m| m.len());
    // Start-up: the thread alone (idempotent: the runtime's init then finds
    // it started), then the runtime's first use.
    let started = Instant::now();
    signals::resolve::start();
    let thread_start = started.elapsed();
    let t = Instant::now();
    runtime::go(|| ()).join().unwrap();
    let runtime_start = t.elapsed();
    // `prepared`: first wait (polling) until the symbolizer thread has
    // indexed the binary and prepared what most dumps need, and report how
    // long that took after the thread started and what it cost; then ask.
    // Without it the first request comes at once, as a crash in the first
    // G would.
    if std::env::args().nth(1).as_deref() == Some("prepared") {
        let c = cpu();
        while !signals::resolve::prepared() {
            std::thread::sleep(Duration::from_micros(200));
        }
        println!(
            "prepared_ms={:.2} cpu_ms={:.2}",
            started.elapsed().as_secs_f64() * 1e3,
            cpu().saturating_sub(c).as_secs_f64() * 1e3
        );
    }
    // Crash time: the first answer reads the debug info.
    let (first, first_cpu, named) = ask(&[
        first_target as *const () as usize + 1,
        main as *const () as usize + 1,
    ]);
    let (second, second_cpu, named2) = ask(&[
        second_target as *const () as usize + 1,
        ask as *const () as usize + 1,
    ]);
    println!("binary_bytes={size}");
    println!(
        "symbolizer_thread_start_us={:.1}",
        thread_start.as_secs_f64() * 1e6
    );
    println!(
        "runtime_first_use_us={:.1}",
        runtime_start.as_secs_f64() * 1e6
    );
    println!(
        "first_answer_ms={:.2} cpu_ms={:.2} file_line={named}",
        first.as_secs_f64() * 1e3,
        first_cpu.as_secs_f64() * 1e3
    );
    println!(
        "second_answer_ms={:.2} cpu_ms={:.2} file_line={named2}",
        second.as_secs_f64() * 1e3,
        second_cpu.as_secs_f64() * 1e3
    );
    assert_eq!(first_target(1) + second_target(1), 7 + 8);
}
