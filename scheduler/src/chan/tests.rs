//! Unit tests of the channel hand-shakes, beside the code: the sudog
//! hand-off in both directions, a select woken by one arm only, `close`
//! waking every waiter, and disconnection from either side. The waiting
//! party is a plain thread or a G; each test first waits until the party is
//! really queued (the queue lengths, read under the channel lock), so the
//! hand-shake under test is the one that runs, not the fast path.
//!
//! Gs report through std channels; assertions run on the test thread (a
//! G's entry must not unwind).

use super::select::{Mode, RecvArm, Selected, select};
use super::*;
use crate::test_support::{LIMIT, go};
use std::sync::atomic::AtomicUsize as Count;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `(receivers, senders)` queued on `chan` now.
fn queued<T>(chan: &Chan<T>) -> (usize, usize) {
    let st = chan.lock();
    (st.recvq.len(), st.sendq.len())
}

/// Waits until `chan` has `want` = `(receivers, senders)` queued.
fn wait_queued<T>(chan: &Chan<T>, want: (usize, usize)) {
    let start = Instant::now();
    while queued(chan) != want {
        assert!(
            start.elapsed() < LIMIT,
            "queues {:?}, waited for {want:?}",
            queued(chan)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Counts drops, to tell a value moved from a value lost or dropped twice.
struct Tracked(u32, Arc<Count>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// Symptom guarded: a send to a queued receiver goes through the buffer (or
/// is lost) instead of straight into the receiver's slot. On a rendezvous
/// channel nothing may ever sit in the buffer.
#[test]
fn a_send_hands_the_value_to_a_queued_receiver() {
    for on_g in [false, true] {
        let (tx, rx) = bounded::<String>(0);
        let (done_tx, done_rx) = mpsc::channel();
        let rx2 = rx.clone();
        let recv = move || {
            let _ = done_tx.send(rx2.recv());
        };
        if on_g {
            go(recv);
        } else {
            std::thread::spawn(recv);
        }
        wait_queued(rx.chan(), (1, 0));
        tx.send("direct".to_owned()).unwrap();
        let got = done_rx.recv_timeout(LIMIT).expect("the receiver woke");
        assert_eq!(got, Ok("direct".to_owned()), "on a G: {on_g}");
        assert_eq!(
            rx.chan().lock().buf.len(),
            0,
            "the value went through the buffer"
        );
        assert_eq!(queued(rx.chan()), (0, 0));
    }
}

/// Symptom guarded: a receive from a full buffer with a sender queued takes
/// the sender's value ahead of older ones (FIFO broken), or does not wake
/// the sender.
#[test]
fn a_receive_from_a_full_buffer_takes_the_head_and_wakes_the_sender() {
    for on_g in [false, true] {
        let (tx, rx) = bounded::<u32>(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let tx2 = tx.clone();
        let send = move || {
            let _ = done_tx.send(tx2.send(3).is_ok());
        };
        if on_g {
            go(send);
        } else {
            std::thread::spawn(send);
        }
        wait_queued(rx.chan(), (0, 1));
        assert_eq!(rx.recv(), Ok(1));
        assert!(done_rx.recv_timeout(LIMIT).expect("the sender woke"));
        assert_eq!(
            rx.chan().lock().buf.len(),
            2,
            "the sender's value joined the tail"
        );
        assert_eq!((rx.recv(), rx.recv()), (Ok(2), Ok(3)));
    }
}

/// Symptom guarded: on a rendezvous channel a receiver that finds a sender
/// queued does not take its value directly (or takes it twice).
#[test]
fn a_receive_takes_a_queued_senders_value() {
    let drops = Arc::new(Count::new(0));
    let (tx, rx) = bounded::<Tracked>(0);
    let (done_tx, done_rx) = mpsc::channel();
    let d = drops.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(tx.send(Tracked(7, d)).is_ok());
    });
    wait_queued(rx.chan(), (0, 1));
    let v = rx.recv().unwrap();
    assert!(done_rx.recv_timeout(LIMIT).unwrap());
    assert_eq!(v.0, 7);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        0,
        "moved, not copied and dropped"
    );
    drop(v);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

/// Symptom guarded: a select queued on two channels is fired by both (a
/// value lost: taken from its sender but never delivered) or its other
/// sudog stays behind and swallows a later value.
#[test]
fn a_select_is_woken_by_one_arm_only() {
    for on_g in [false, true] {
        let (tx_a, rx_a) = bounded::<u32>(0);
        let (tx_b, rx_b) = bounded::<u32>(0);
        let (done_tx, done_rx) = mpsc::channel();
        let (ra, rb) = (rx_a.clone(), rx_b.clone());
        let sel = move || {
            let a = RecvArm::new(&ra);
            let b = RecvArm::new(&rb);
            let r = match select(&[a.op(), b.op()], Mode::Block) {
                Selected::Arm(0) => (0, a.take()),
                Selected::Arm(1) => (1, b.take()),
                _ => (9, None),
            };
            let _ = done_tx.send(r);
        };
        if on_g {
            go(sel);
        } else {
            std::thread::spawn(sel);
        }
        wait_queued(rx_a.chan(), (1, 0));
        wait_queued(rx_b.chan(), (1, 0));
        // Two senders at once: one fires the select, the other must stay
        // queued with its value.
        let (sent_tx, sent_rx) = mpsc::channel();
        for (tx, v) in [(tx_a.clone(), 10), (tx_b.clone(), 20)] {
            let sent_tx = sent_tx.clone();
            std::thread::spawn(move || {
                let _ = sent_tx.send((v, tx.send(v).is_ok()));
            });
        }
        let (arm, got) = done_rx.recv_timeout(LIMIT).expect("the select woke");
        let want = [10, 20][arm];
        assert_eq!(got, Some(Ok(want)), "arm {arm} on a G: {on_g}");
        assert_eq!(sent_rx.recv_timeout(LIMIT).unwrap(), (want, true));
        // The loser is still blocked, queued on its channel alone (the
        // select's sudog there is gone), and its value still arrives.
        let loser_rx = if arm == 0 { &rx_b } else { &rx_a };
        wait_queued(loser_rx.chan(), (0, 1));
        assert_eq!(loser_rx.recv(), Ok([20, 10][arm]));
        assert_eq!(sent_rx.recv_timeout(LIMIT).unwrap(), ([20, 10][arm], true));
        assert_eq!((queued(rx_a.chan()), queued(rx_b.chan())), ((0, 0), (0, 0)));
    }
}

/// Symptom guarded: `close` wakes only some waiters (the rest hang), or a
/// blocked sender loses its value instead of getting it back.
#[test]
fn close_wakes_every_waiter() {
    const N: usize = 6;
    // Receivers, half on threads and half on Gs.
    let (tx, rx) = bounded::<u32>(0);
    let (done_tx, done_rx) = mpsc::channel();
    for i in 0..N {
        let (rx, done_tx) = (rx.clone(), done_tx.clone());
        let recv = move || {
            let _ = done_tx.send(rx.recv());
        };
        if i % 2 == 0 {
            go(recv);
        } else {
            std::thread::spawn(recv);
        }
    }
    wait_queued(rx.chan(), (N, 0));
    assert!(tx.close());
    assert!(!tx.close(), "a second close reports it");
    for _ in 0..N {
        assert_eq!(
            done_rx.recv_timeout(LIMIT).expect("a receiver woke"),
            Err(RecvError)
        );
    }
    // Senders blocked on a full buffer get their values back.
    let drops = Arc::new(Count::new(0));
    let (tx, rx) = bounded::<Tracked>(1);
    tx.send(Tracked(0, drops.clone())).unwrap();
    let (back_tx, back_rx) = mpsc::channel();
    for i in 1..=N as u32 {
        let (tx, back_tx, d) = (tx.clone(), back_tx.clone(), drops.clone());
        let send = move || {
            let r = tx.send(Tracked(i, d)).map_err(|e| e.0.0);
            let _ = back_tx.send(r);
        };
        if i % 2 == 0 {
            go(send);
        } else {
            std::thread::spawn(send);
        }
    }
    wait_queued(rx.chan(), (0, N));
    assert!(rx.close());
    let mut back: Vec<u32> = (0..N)
        .map(|_| {
            back_rx
                .recv_timeout(LIMIT)
                .expect("a sender woke")
                .unwrap_err()
        })
        .collect();
    back.sort_unstable();
    assert_eq!(back, (1..=N as u32).collect::<Vec<_>>());
    // The buffered value is still received after close, then Closed.
    assert_eq!(rx.recv().map(|v| v.0), Ok(0));
    assert_eq!(rx.recv().map(|v| v.0), Err(RecvError));
    assert_eq!(
        drops.load(Ordering::Relaxed),
        N + 1,
        "every value dropped once"
    );
}

/// Symptom guarded: when the last receiver goes, a blocked sender hangs
/// (Go would block it forever; gort fails it), a later send is accepted
/// into a buffer nobody drains, or buffered values leak.
#[test]
fn the_last_receiver_leaving_fails_every_sender_and_drops_the_buffer() {
    let drops = Arc::new(Count::new(0));
    let (tx, rx) = bounded::<Tracked>(2);
    tx.send(Tracked(1, drops.clone())).unwrap();
    tx.send(Tracked(2, drops.clone())).unwrap();
    let (back_tx, back_rx) = mpsc::channel();
    let (tx2, d) = (tx.clone(), drops.clone());
    go(move || {
        let r = tx2.send(Tracked(3, d)).map_err(|e| e.0.0);
        let _ = back_tx.send(r);
    });
    wait_queued(rx.chan(), (0, 1));
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(tx.chan().lock().buf.len(), 2, "one receiver is left");
    drop(rx2);
    assert_eq!(
        back_rx.recv_timeout(LIMIT).expect("the sender woke"),
        Err(3)
    );
    assert_eq!(
        drops.load(Ordering::Relaxed),
        3,
        "the buffer and the failed value"
    );
    let e = tx.send(Tracked(4, drops.clone())).unwrap_err();
    assert_eq!(e.0.0, 4, "a later send fails with its value");
    drop(e);
    assert_eq!(drops.load(Ordering::Relaxed), 4);
}

/// Symptom guarded: when the last sender goes, a blocked receiver hangs,
/// or buffered values are lost instead of drained first.
#[test]
fn the_last_sender_leaving_closes_after_the_buffer_drains() {
    let (tx, rx) = bounded::<u32>(4);
    let (done_tx, done_rx) = mpsc::channel();
    let rx2 = rx.clone();
    go(move || {
        let _ = done_tx.send(rx2.recv());
    });
    wait_queued(rx.chan(), (1, 0));
    let tx2 = tx.clone();
    drop(tx);
    assert_eq!(queued(rx.chan()), (1, 0), "one sender is left");
    drop(tx2);
    assert_eq!(
        done_rx.recv_timeout(LIMIT).expect("the receiver woke"),
        Err(RecvError)
    );
    let (tx, rx) = unbounded::<u32>();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(rx.recv(), Err(RecvError));
}

/// Symptom guarded: a thread ping-ponging with a G through two rendezvous
/// channels loses a wake-up (the hand-off of a value and the park of the
/// sender race), so one side hangs.
#[test]
fn a_ping_pong_between_a_thread_and_a_g_loses_no_wake_up() {
    const ROUNDS: u32 = 2_000;
    let (ping_tx, ping_rx) = bounded::<u32>(0);
    let (pong_tx, pong_rx) = bounded::<u32>(0);
    go(move || {
        while let Ok(v) = ping_rx.recv() {
            if pong_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    for i in 0..ROUNDS {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv(), Ok(i + 1));
        assert!(start.elapsed() < LIMIT, "stalled at round {i}");
    }
}
