//! Channel and timer scenarios that need a process of their own (no other
//! test's Gs competing for the Ps).

use runtime::chan;
use std::time::{Duration, Instant};

/// Symptom: Gs sleeping on timers wake in the wrong order (a batch of due
/// timers readied in reverse, or one P's timers all fired before another's
/// earlier ones). Prints the wake order and its inversions.
pub fn sleep_order() {
    let n = 30u32;
    let qemu = testkit::under_qemu();
    let step = Duration::from_millis(if qemu { 40 } else { 8 });
    // Spawning 30 Gs under qemu on a loaded machine has taken half a second.
    let base = Instant::now() + Duration::from_millis(if qemu { 1000 } else { 20 });
    // (k, woke at, whether its deadline was still ahead when it went to
    // sleep: on a loaded machine, or under qemu, the last Gs spawned may
    // start after their deadline and then run in spawn order, which says
    // nothing about the timers' order).
    let (tx, rx) = chan::unbounded::<(u32, Instant, bool)>();
    for k in (0..n).rev() {
        let tx = tx.clone();
        runtime::go(move || {
            let deadline = base + step * k;
            let ahead = Instant::now() < deadline;
            runtime::time::sleep_until(deadline);
            tx.send((k, Instant::now(), ahead)).unwrap();
        });
    }
    drop(tx);
    let all: Vec<(u32, Instant, bool)> = rx.iter().collect();
    let early = all
        .iter()
        .filter(|&&(k, at, _)| at < base + step * k)
        .count();
    let mut woke: Vec<(u32, Instant)> = all
        .iter()
        .filter(|&&(_, _, ahead)| ahead)
        .map(|&(k, at, _)| (k, at))
        .collect();
    woke.sort_by_key(|&(_, at)| at);
    let inversions = woke.windows(2).filter(|w| w[0].0 > w[1].0).count();
    let order: Vec<String> = woke.iter().map(|w| w.0.to_string()).collect();
    println!("woke={}", all.len());
    println!("slept={}", woke.len());
    println!("early={early}");
    println!("inversions={inversions}");
    println!("order={}", order.join(","));
}
