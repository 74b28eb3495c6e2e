//! A pipeline of Gs connected by channels, Go style: a generator, a pool
//! of workers, and a collector that `select!`s over results, a ticker for
//! progress reports, and an overall deadline.
//!
//! ```sh
//! cargo run --release --example pipeline [numbers] [workers]
//! ```
//!
//! Stage 1 sends the numbers 1..=N on an unbuffered channel (it waits for
//! a worker to take each one). Stage 2 is a pool of workers receiving from
//! that channel (a channel has many consumers) and sending `(n, is_prime)`
//! on a buffered one. Stage 3 collects the results, printing progress on
//! every tick; closing propagates: when the generator returns, its sender
//! drops and the workers' loops end; when the last worker ends, the results
//! channel closes and the collector's `recv` arm reports it.

use runtime::chan;
use runtime::select;
use runtime::time::Ticker;
use std::time::{Duration, Instant};

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

fn main() {
    let mut args = std::env::args().skip(1);
    let numbers: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let workers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let start = Instant::now();

    // Stage 1: the generator.
    let (num_tx, num_rx) = chan::bounded::<u64>(0);
    runtime::go(move || {
        for n in 1..=numbers {
            if num_tx.send(n).is_err() {
                return; // every worker is gone
            }
        }
    });

    // Stage 2: the workers.
    let (res_tx, res_rx) = chan::bounded::<(u64, bool)>(64);
    for _ in 0..workers {
        let (num_rx, res_tx) = (num_rx.clone(), res_tx.clone());
        runtime::go(move || {
            for n in &num_rx {
                // Yield now and then: scheduling is cooperative.
                if n.is_multiple_of(1024) {
                    runtime::yield_now();
                }
                if res_tx.send((n, is_prime(n))).is_err() {
                    return;
                }
            }
        });
    }
    drop((num_rx, res_tx));

    // Stage 3: the collector, in a G of its own.
    let collector = runtime::go(move || {
        let ticker = Ticker::new(Duration::from_millis(100)).expect("a positive period");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut seen, mut primes, mut largest) = (0u64, 0u64, 0u64);
        loop {
            select! {
                recv(res_rx) -> r => match r {
                    Ok((n, p)) => {
                        seen += 1;
                        if p {
                            primes += 1;
                            largest = largest.max(n);
                        }
                    }
                    Err(_) => break, // every worker finished
                },
                recv(ticker.chan()) -> _ => println!("progress: {seen} checked, {primes} primes"),
                deadline(deadline) => {
                    println!("deadline reached, stopping early");
                    break;
                }
            }
        }
        ticker.stop();
        (seen, primes, largest)
    });

    let (seen, primes, largest) = collector.join().expect("the collector panicked");
    println!(
        "checked {seen} numbers with {workers} workers in {:.1?}: {primes} primes, the largest {largest}",
        start.elapsed()
    );
    assert_eq!(seen, numbers, "a value was lost or duplicated");
}
