//! Conformance with the documented semantics of crossbeam-channel and Go's
//! channels, written for gort: fairness of `select!` arms naming one
//! channel (also when the select waits), when buffered values are dropped,
//! `select!` on temporaries and every arm kind, `never`, `select_biased!`,
//! `is_full`, close and disconnect in every state, and many senders and
//! receivers across Gs and plain threads.

use runtime::chan::{self, RecvError, SendError, TryRecvError, TrySendError};
use runtime::{select, select_biased, time};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::under_qemu;

/// Pearson's chi-square statistic of `counts` against a uniform split.
fn chi_square(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Chi-square with 2 degrees of freedom exceeds 41.4 with probability
/// 1e-9 for a fair split: loose enough never to flake, while the unfair
/// split this guards against (`[n, 0, 0]`) scores `2n`.
const CHI2_DF2_1E9: f64 = 41.4;

/// A select with three `recv` arms on one rendezvous channel, each time
/// parked before the value arrives: whoever wakes it must find a random
/// arm, not always the first (Go permutes the lock order the same way).
fn duplicate_arms_fair_when_waiting() -> [usize; 3] {
    let rounds = if under_qemu() { 90 } else { 300 };
    let (tx, rx) = chan::bounded::<u32>(0);
    let (ack_tx, ack_rx) = chan::bounded::<()>(0);
    let sender = std::thread::spawn(move || {
        for i in 0..rounds {
            // Let the select park first.
            std::thread::sleep(Duration::from_millis(1));
            tx.send(i).unwrap();
            ack_rx.recv().unwrap();
        }
    });
    let mut counts = [0usize; 3];
    for _ in 0..rounds {
        let arm = select! {
            recv(rx) -> v => { v.unwrap(); 0 },
            recv(rx) -> v => { v.unwrap(); 1 },
            recv(rx) -> v => { v.unwrap(); 2 },
        };
        counts[arm] += 1;
        ack_tx.send(()).unwrap();
    }
    sender.join().unwrap();
    counts
}

#[test]
fn duplicate_arms_are_chosen_fairly_when_the_select_waits() {
    for (place, counts) in [
        ("thread", duplicate_arms_fair_when_waiting()),
        (
            "G",
            runtime::go(duplicate_arms_fair_when_waiting)
                .join()
                .unwrap(),
        ),
    ] {
        let chi2 = chi_square(&counts);
        assert!(
            chi2 < CHI2_DF2_1E9,
            "{place}: arms chosen {counts:?} (chi-square {chi2:.1})"
        );
    }
}

#[test]
fn duplicate_send_arms_are_chosen_fairly_when_the_select_waits() {
    let rounds = if under_qemu() { 90 } else { 300 };
    let (tx, rx) = chan::bounded::<usize>(0);
    let receiver = runtime::go(move || {
        let mut counts = [0usize; 3];
        for _ in 0..rounds {
            runtime::sleep(Duration::from_millis(1));
            counts[rx.recv().unwrap()] += 1;
        }
        counts
    });
    for _ in 0..rounds {
        select! {
            send(tx, 0) -> r => r.unwrap(),
            send(tx, 1) -> r => r.unwrap(),
            send(tx, 2) -> r => r.unwrap(),
        }
    }
    let counts = receiver.join().unwrap();
    let chi2 = chi_square(&counts);
    assert!(
        chi2 < CHI2_DF2_1E9,
        "arms chosen {counts:?} (chi2 {chi2:.1})"
    );
}

#[test]
fn buffered_values_are_dropped_with_the_last_receiver() {
    let v = Arc::new(());
    // Bounded and unbounded, from a G and a thread.
    for unbounded in [false, true] {
        let (tx, rx) = if unbounded {
            chan::unbounded()
        } else {
            chan::bounded(4)
        };
        for _ in 0..3 {
            tx.send(v.clone()).unwrap();
        }
        let rx2 = rx.clone();
        drop(rx);
        assert_eq!(Arc::strong_count(&v), 4, "a receiver is still there");
        runtime::go(move || drop(rx2)).join().unwrap();
        assert_eq!(
            Arc::strong_count(&v),
            1,
            "nothing can receive them: dropped (unbounded: {unbounded})"
        );
        assert!(tx.is_empty());
        // Later sends fail and give the value back.
        let Err(SendError(back)) = tx.send(v.clone()) else {
            panic!("send without receivers succeeded")
        };
        drop(back);
        assert_eq!(Arc::strong_count(&v), 1);
    }
}

#[test]
fn a_blocked_sender_gets_its_value_back_when_the_receivers_go() {
    let v = Arc::new(());
    let (tx, rx) = chan::bounded::<Arc<()>>(1);
    tx.send(v.clone()).unwrap();
    let v2 = v.clone();
    let h = runtime::go(move || tx.send(v2).map_err(|e| e.into_inner()));
    runtime::sleep(Duration::from_millis(20));
    drop(rx);
    let back = h.join().unwrap().unwrap_err();
    assert!(Arc::ptr_eq(&back, &v));
    drop(back);
    assert_eq!(Arc::strong_count(&v), 1);
}

/// Counts its drops; the one marked `bomb` panics in `Drop`.
struct Tracked {
    drops: Arc<AtomicUsize>,
    bomb: bool,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.bomb {
            panic!("bomb");
        }
    }
}

#[test]
fn a_panicking_drop_does_not_keep_the_rest_of_the_buffer() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded::<Tracked>(8);
    for i in 0..5 {
        tx.send(Tracked {
            drops: drops.clone(),
            bomb: i == 1,
        })
        .unwrap();
    }
    let r = std::panic::catch_unwind(move || drop(rx));
    assert!(r.is_err(), "the value's panic goes on in the dropper");
    assert_eq!(drops.load(Ordering::SeqCst), 5, "every value was dropped");
    assert!(tx.is_empty());
}

#[test]
fn select_takes_temporaries_and_trailing_commas() {
    let (tx, rx) = chan::bounded::<i32>(1);
    // Go's `case <-time.After(d):`.
    let t = Instant::now();
    let r = select! {
        recv(rx) -> _ => "value",
        recv(time::after(Duration::from_millis(10))) -> _ => "after",
    };
    assert_eq!(r, "after");
    assert!(t.elapsed() >= Duration::from_millis(10));
    // A temporary sender and receiver, and trailing commas inside the arms.
    let r = select! {
        send(tx.clone(), 5,) -> r => r.is_ok(),
        recv(chan::never::<u8>(),) -> _ => false,
    };
    assert!(r);
    let r = select! {
        recv(rx.clone(),) -> v => v,
        default(Duration::from_secs(5),) => Ok(-1),
    };
    assert_eq!(r, Ok(5));
    // Crossbeam's `default(timeout)` arm.
    let r = select! {
        recv(rx) -> v => v.unwrap(),
        default(Duration::from_millis(5)) => -1,
    };
    assert_eq!(r, -1);
    // References to handles work too.
    let (rtx, rrx) = (&tx, &rx);
    select! { send(rtx, 8) -> r => r.unwrap(), }
    select! { recv(rrx) -> v => assert_eq!(v, Ok(8)), }
}

#[test]
fn every_arm_kind_in_one_select() {
    let (tx, rx) = chan::bounded::<u8>(0);
    let (_keep, quiet) = chan::bounded::<u8>(0);
    // Nothing can proceed: every kind of final arm runs.
    for final_kind in 0..3 {
        let r = match final_kind {
            0 => select! {
                send(tx, 1) -> _ => 'x',
                recv(quiet) -> _ => 'x',
                default => 'd',
            },
            1 => select! {
                send(tx, 1) -> _ => 'x',
                recv(quiet) -> _ => 'x',
                timeout(Duration::from_millis(2)) => 't',
            },
            _ => select! {
                send(tx, 1) -> _ => 'x',
                recv(quiet) -> _ => 'x',
                deadline(Instant::now() + Duration::from_millis(2)) => 'l',
            },
        };
        assert_eq!(r, ['d', 't', 'l'][final_kind]);
    }
    // A send arm wins once a receiver comes.
    let h = runtime::go(move || rx.recv());
    let r = select! {
        send(tx, 9) -> r => r.map(|_| 's'),
        recv(quiet) -> _ => Ok('x'),
    };
    assert_eq!(r, Ok('s'));
    assert_eq!(h.join().unwrap(), Ok(9));
}

#[test]
fn never_never_fires_and_never_closes() {
    let rx = chan::never::<i32>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(!rx.is_closed());
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(chan::RecvTimeoutError::Timeout)
    );
    let r = select! {
        recv(rx) -> _ => 0,
        default => 1,
    };
    assert_eq!(r, 1);
}

#[test]
fn select_biased_takes_the_first_ready_arm() {
    let chans: Vec<_> = (0..3).map(|_| chan::bounded::<u8>(1)).collect();
    for (tx, _) in &chans {
        tx.send(0).unwrap();
    }
    for _ in 0..200 {
        let i = select_biased! {
            recv(chans[0].1) -> _ => 0,
            recv(chans[1].1) -> _ => 1,
            recv(chans[2].1) -> _ => 2,
        };
        assert_eq!(i, 0);
        chans[0].0.send(0).unwrap();
    }
    // With the first not ready, the next ready one.
    chans[0].1.recv().unwrap();
    let i = select_biased! {
        recv(chans[0].1) -> _ => 0,
        recv(chans[1].1) -> _ => 1,
        default => 9,
    };
    assert_eq!(i, 1);
}

#[test]
fn is_full_per_flavour() {
    let (tx, rx) = chan::bounded::<u8>(2);
    assert!(!tx.is_full());
    tx.send(1).unwrap();
    assert!(!rx.is_full());
    tx.send(2).unwrap();
    assert!(tx.is_full() && rx.is_full());
    rx.recv().unwrap();
    assert!(!tx.is_full());
    let (z, zr) = chan::bounded::<u8>(0);
    assert!(z.is_full() && zr.is_empty(), "a rendezvous is always full");
    let (u, _ur) = chan::unbounded::<u8>();
    for i in 0..100 {
        u.send(i).unwrap();
    }
    assert!(!u.is_full(), "an unbounded channel is never full");
}

#[test]
fn handles_are_unwind_safe_send_and_sync() {
    fn check<T: UnwindSafe + RefUnwindSafe + Send + Sync>() {}
    check::<chan::Sender<std::cell::Cell<u8>>>();
    check::<chan::Receiver<std::cell::Cell<u8>>>();
    // So they can be used across catch_unwind without AssertUnwindSafe.
    let (tx, rx) = chan::bounded::<u8>(1);
    let r = std::panic::catch_unwind(|| {
        tx.send(1).unwrap();
        panic!("after the send")
    });
    assert!(r.is_err());
    assert_eq!(rx.recv(), Ok(1));
}

#[test]
fn close_and_disconnect_in_every_state() {
    // Empty, buffered, with a blocked receiver, with a blocked sender.
    let (tx, rx) = chan::bounded::<u8>(2);
    assert!(tx.close());
    assert!(!rx.close(), "a second close reports it");
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));

    let (tx, rx) = chan::bounded::<u8>(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert!(rx.is_closed());
    assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2], "drained first");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

    let (tx, rx) = chan::bounded::<u8>(0);
    let h = runtime::go(move || rx.recv());
    runtime::sleep(Duration::from_millis(10));
    tx.close();
    assert_eq!(h.join().unwrap(), Err(RecvError));

    let (tx, rx) = chan::bounded::<u8>(0);
    let h = std::thread::spawn(move || tx.send(7));
    std::thread::sleep(Duration::from_millis(10));
    rx.close();
    assert_eq!(h.join().unwrap(), Err(SendError(7)));

    // A select waiting on a channel that closes gets that arm's Err.
    let (tx, rx) = chan::bounded::<u8>(0);
    let (_otx, orx) = chan::bounded::<u8>(0);
    let h = runtime::go(move || {
        select! {
            recv(orx) -> _ => None,
            recv(rx) -> v => Some(v),
        }
    });
    runtime::sleep(Duration::from_millis(10));
    drop(tx);
    assert_eq!(h.join().unwrap(), Some(Err(RecvError)));
}

#[test]
fn many_senders_and_receivers_across_gs_and_threads() {
    let per = if under_qemu() { 500 } else { 5000 };
    for cap in [0usize, 1, 16] {
        let (tx, rx) = chan::bounded::<u64>(cap);
        let mut senders = Vec::new();
        for s in 0..4u64 {
            let tx = tx.clone();
            let body = move || (0..per as u64).for_each(|i| tx.send(s * 1_000_000 + i).unwrap());
            if s % 2 == 0 {
                senders.push(either(runtime::go(body)));
            } else {
                senders.push(other(std::thread::spawn(body)));
            }
        }
        drop(tx);
        let mut receivers = Vec::new();
        for r in 0..4 {
            let rx = rx.clone();
            let body = move || {
                // Per sender, values arrive in order.
                let mut last = [None::<u64>; 4];
                let mut sum = 0u64;
                let mut n = 0usize;
                for v in rx.iter() {
                    let s = (v / 1_000_000) as usize;
                    assert!(last[s].is_none_or(|l| l < v), "FIFO per sender");
                    last[s] = Some(v);
                    sum += v;
                    n += 1;
                }
                (n, sum)
            };
            if r % 2 == 0 {
                receivers.push(either(runtime::go(body)));
            } else {
                receivers.push(other(std::thread::spawn(body)));
            }
        }
        drop(rx);
        for s in senders {
            s();
        }
        let (n, sum) = receivers
            .into_iter()
            .map(|r| r())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let expect: u64 = (0..4u64)
            .map(|s| (0..per as u64).map(|i| s * 1_000_000 + i).sum::<u64>())
            .sum();
        assert_eq!((n, sum), (4 * per, expect), "cap {cap}");
    }
}

/// Joins a G.
fn either<T: Send + 'static>(h: runtime::JoinHandle<T>) -> Box<dyn FnOnce() -> T> {
    Box::new(move || h.join().unwrap())
}

/// Joins a thread.
fn other<T: Send + 'static>(h: std::thread::JoinHandle<T>) -> Box<dyn FnOnce() -> T> {
    Box::new(move || h.join().unwrap())
}
