//! How long does a live dump (`runtime::dump`) take with many Gs, and how
//! long does it pause the program?
//!
//! `cargo run --release --example live_dump -- [GS] [DUMPS]` (defaults
//! 10000 and 10). Starts GS parked Gs (in 8 distinct stacks, so the dump
//! groups them) and 2 busy Gs that record the longest gap between two of
//! their loop iterations, then takes DUMPS live dumps into `io::sink`.
//! Prints the dump's wall time, its size, the longest time any thread was
//! stopped (a running G's M walking its own stack in the handler, measured
//! inside the handler), and the busy Gs' longest gap
//! during the dumps and during an equally long quiet window (the machine's
//! own noise: on a shared machine both are dominated by the OS scheduler).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[inline(never)]
fn parked(kind: usize) {
    // Distinct stack depths make distinct groups.
    if kind > 0 {
        parked(kind - 1);
        std::hint::black_box(kind);
    } else {
        runtime::sleep(Duration::from_secs(3600));
    }
}

fn busy(stop: Arc<AtomicBool>, max_gap_ns: Arc<AtomicU64>) {
    let epoch = Instant::now();
    let mut last = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed().as_nanos() as u64;
        if last != 0 {
            max_gap_ns.fetch_max(now - last, Ordering::Relaxed);
        }
        last = now;
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dumps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    for i in 0..n {
        runtime::go(move || parked(i % 8));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let gap = Arc::new(AtomicU64::new(0));
    let busies: Vec<_> = (0..2)
        .map(|_| {
            let (s, g) = (stop.clone(), gap.clone());
            runtime::go(move || busy(s, g))
        })
        .collect();
    while runtime::stats().waiting_gs < n {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Wait for the symbol table, so the dumps name functions.
    while !signals::symbols::is_ready() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));

    let mut times = Vec::new();
    let mut bytes = 0usize;
    let mut dump_gap = 0u64;
    let mut quiet_gap = 0u64;
    let mut stats = runtime::DumpStats::default();
    let mut pause_max = 0u64;
    for _ in 0..dumps {
        // A quiet window as long as the last dump, for comparison.
        gap.store(0, Ordering::Relaxed);
        std::thread::sleep(times.last().copied().unwrap_or(Duration::from_millis(10)));
        quiet_gap = quiet_gap.max(gap.load(Ordering::Relaxed));

        gap.store(0, Ordering::Relaxed);
        let mut sink = Counting(0);
        let t = Instant::now();
        stats = runtime::dump(&mut sink).unwrap();
        times.push(t.elapsed());
        pause_max = pause_max.max(stats.pause_ns_max);
        dump_gap = dump_gap.max(gap.load(Ordering::Relaxed));
        bytes = sink.0;
    }
    stop.store(true, Ordering::Relaxed);
    for b in busies {
        b.join().unwrap();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "gs={n} dumps={dumps} bytes={bytes} asked={} answered={}",
        stats.asked, stats.answered
    );
    println!(
        "dump_ms_median={:.2} dump_ms_max={:.2}",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    println!(
        "running_m_pause_us_max={:.1} (the handler's walk: the only thread a dump stops)",
        pause_max as f64 / 1e3
    );
    println!(
        "busy_g_max_gap_us_during_dumps={:.1} busy_g_max_gap_us_quiet={:.1}",
        dump_gap as f64 / 1e3,
        quiet_gap as f64 / 1e3
    );
}

/// A writer that counts bytes.
struct Counting(usize);

impl std::io::Write for Counting {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
