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
    let base = Instant::now() + Duration::from_millis(20);
    let (tx, rx) = chan::unbounded::<(u32, Instant)>();
    for k in (0..n).rev() {
        let tx = tx.clone();
        runtime::go(move || {
            runtime::time::sleep_until(base + step * k);
            tx.send((k, Instant::now())).unwrap();
        });
    }
    drop(tx);
    let mut woke: Vec<(u32, Instant)> = rx.iter().collect();
    let early = woke.iter().filter(|&&(k, at)| at < base + step * k).count();
    woke.sort_by_key(|&(_, at)| at);
    let inversions = woke.windows(2).filter(|w| w[0].0 > w[1].0).count();
    let order: Vec<String> = woke.iter().map(|w| w.0.to_string()).collect();
    println!("woke={}", woke.len());
    println!("early={early}");
    println!("inversions={inversions}");
    println!("order={}", order.join(","));
}
