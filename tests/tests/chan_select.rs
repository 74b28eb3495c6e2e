//! `select!`: readiness, `default`, timeouts, closed channels, sends, and
//! fairness among ready arms (Go's TestSelectFairness, TestNonblockRecvRace
//! and friends, re-expressed).

use runtime::chan::{self, RecvError};
use runtime::select;
use std::time::{Duration, Instant};
use tests::under_qemu;

fn slack() -> Duration {
    Duration::from_secs(if under_qemu() { 120 } else { 20 })
}

#[test]
fn default_never_blocks() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let t = Instant::now();
    for _ in 0..1000 {
        let r = select! {
            recv(rx) -> v => Some(v),
            send(tx, 1) -> _ => None,
            default => None,
        };
        assert_eq!(r, None);
    }
    assert!(t.elapsed() < slack());
    // A select with only a default runs it.
    let v = select! { default => 5 };
    assert_eq!(v, 5);
}

#[test]
fn ready_arm_wins_over_default() {
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(3).unwrap();
    let got = select! {
        recv(rx) -> v => v.unwrap(),
        default => -1,
    };
    assert_eq!(got, 3);
    let sent = select! {
        send(tx, 4) -> r => r.is_ok(),
        default => false,
    };
    assert!(sent);
    assert_eq!(rx.recv(), Ok(4));
}

#[test]
fn closed_channel_is_always_ready() {
    let (tx, rx) = chan::bounded::<i32>(0);
    drop(tx);
    for _ in 0..100 {
        let r = select! {
            recv(rx) -> v => v,
            default => Ok(-1),
        };
        assert_eq!(r, Err(RecvError));
    }
    // Blocking select on a closed channel returns at once too.
    let r = select! { recv(rx) -> v => v };
    assert_eq!(r, Err(RecvError));
    // A send arm on a closed channel reports the error with the value.
    let (tx, rx2) = chan::bounded::<String>(0);
    rx2.close();
    let r = select! { send(tx, "x".to_string()) -> r => r };
    assert_eq!(r.unwrap_err().into_inner(), "x");
}

#[test]
fn blocked_select_wakes_on_close() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let (_tx2, rx2) = chan::bounded::<i32>(0);
    let h = runtime::go(move || {
        select! {
            recv(rx) -> v => v.map(|_| 1),
            recv(rx2) -> v => v.map(|_| 2),
        }
    });
    runtime::sleep(Duration::from_millis(20));
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));
}

#[test]
fn blocked_select_receives_from_whichever_fires() {
    for which in 0..3 {
        let (tx0, rx0) = chan::bounded::<usize>(0);
        let (tx1, rx1) = chan::bounded::<usize>(0);
        let (tx2, rx2) = chan::bounded::<usize>(0);
        let h = runtime::go(move || {
            select! {
                recv(rx0) -> v => (0, v.unwrap()),
                recv(rx1) -> v => (1, v.unwrap()),
                recv(rx2) -> v => (2, v.unwrap()),
            }
        });
        runtime::sleep(Duration::from_millis(5));
        let tx = [&tx0, &tx1, &tx2][which];
        tx.send(which * 10).unwrap();
        assert_eq!(h.join().unwrap(), (which, which * 10));
        // The other arms left their queues: a rendezvous send there finds
        // no receiver.
        for (i, t) in [&tx0, &tx1, &tx2].into_iter().enumerate() {
            if i != which {
                assert!(t.try_send(1).is_err(), "arm {i} still queued");
            }
        }
    }
}

#[test]
fn blocked_select_send_arm() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let (_qtx, quit) = chan::bounded::<()>(0);
    let h = runtime::go(move || {
        select! {
            send(tx, 99) -> r => r.is_ok(),
            recv(quit) -> _ => false,
        }
    });
    runtime::sleep(Duration::from_millis(10));
    assert_eq!(rx.recv(), Ok(99));
    assert!(h.join().unwrap());
}

#[test]
fn timeout_arm_fires_and_respects_ready_arms() {
    let (_tx, rx) = chan::bounded::<i32>(0);
    let t = Instant::now();
    let r = select! {
        recv(rx) -> _ => "recv",
        timeout(Duration::from_millis(30)) => "timeout",
    };
    assert_eq!(r, "timeout");
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(t.elapsed() < slack());
    // Deadline arms; a past deadline still prefers a ready arm.
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    let r = select! {
        recv(rx) -> _ => "recv",
        deadline(Instant::now() - Duration::from_secs(1)) => "timeout",
    };
    assert_eq!(r, "recv");
    // No arms but a timeout: a sleep.
    let t = Instant::now();
    select! { timeout(Duration::from_millis(10)) => {} }
    assert!(t.elapsed() >= Duration::from_millis(10));
    // From a plain thread too.
    let (_tx, rx) = chan::bounded::<i32>(0);
    let t = std::thread::spawn(move || {
        select! {
            recv(rx) -> _ => false,
            timeout(Duration::from_millis(20)) => true,
        }
    });
    assert!(t.join().unwrap());
}

#[test]
fn fairness_among_ready_arms() {
    // Go's TestSelectFairness: with every arm always ready, each is chosen
    // about equally often. 4 buffered channels kept non-empty.
    let rounds = if under_qemu() { 4000 } else { 40_000 };
    let chans: Vec<_> = (0..4).map(|_| chan::bounded::<u8>(1)).collect();
    for (tx, _) in &chans {
        tx.send(0).unwrap();
    }
    let mut counts = [0usize; 4];
    for _ in 0..rounds {
        let i = select! {
            recv(chans[0].1) -> _ => 0,
            recv(chans[1].1) -> _ => 1,
            recv(chans[2].1) -> _ => 2,
            recv(chans[3].1) -> _ => 3,
        };
        counts[i] += 1;
        chans[i].0.send(0).unwrap();
    }
    let expect = rounds / 4;
    for (i, &c) in counts.iter().enumerate() {
        // Generous: within ±20% of a fair share (a fixed order would give
        // one arm everything).
        assert!(
            c > expect * 8 / 10 && c < expect * 12 / 10,
            "arm {i} chosen {c} times of {rounds}: {counts:?}"
        );
    }
}

#[test]
fn select_in_a_loop_between_gs_moves_everything_once() {
    // Two producers, one consumer selecting over both plus a quit channel.
    let n = if under_qemu() { 500 } else { 10_000 };
    let (atx, arx) = chan::bounded::<usize>(0);
    let (btx, brx) = chan::bounded::<usize>(4);
    let (qtx, qrx) = chan::bounded::<()>(0);
    let pa = runtime::go(move || (0..n).for_each(|i| atx.send(i).unwrap()));
    let pb = runtime::go(move || (0..n).for_each(|i| btx.send(i).unwrap()));
    let consumer = runtime::go(move || {
        let (mut a, mut b) = (0usize, 0usize);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            select! {
                recv(arx) -> v => match v { Ok(v) => a += v, Err(_) => a_open = false },
                recv(brx) -> v => match v { Ok(v) => b += v, Err(_) => b_open = false },
                recv(qrx) -> _ => break,
            }
            if !a_open {
                // A closed channel stays ready: stop selecting on it.
                for v in &brx {
                    b += v;
                }
                b_open = false;
            }
            if !b_open {
                for v in &arx {
                    a += v;
                }
                a_open = false;
            }
        }
        (a, b)
    });
    pa.join().unwrap();
    pb.join().unwrap();
    let (a, b) = consumer.join().unwrap();
    drop(qtx);
    assert_eq!((a, b), (n * (n - 1) / 2, n * (n - 1) / 2));
}

#[test]
fn many_selects_on_shared_channels_no_deadlock_no_loss() {
    // Selects over the same channels named in different orders (the lock
    // order is by address, not by arm order), with senders and receivers
    // both selecting.
    let n = if under_qemu() { 300 } else { 5000 };
    let (atx, arx) = chan::bounded::<usize>(0);
    let (btx, brx) = chan::bounded::<usize>(0);
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let (atx, btx) = (atx.clone(), btx.clone());
            runtime::go(move || {
                for i in 0..n {
                    if k % 2 == 0 {
                        select! { send(atx, i) -> r => r.unwrap(), send(btx, i) -> r => r.unwrap() }
                    } else {
                        select! { send(btx, i) -> r => r.unwrap(), send(atx, i) -> r => r.unwrap() }
                    }
                }
            })
        })
        .collect();
    drop((atx, btx));
    let receivers: Vec<_> = (0..4)
        .map(|k| {
            let (arx, brx) = (arx.clone(), brx.clone());
            runtime::go(move || {
                let mut got = 0usize;
                loop {
                    let r = if k % 2 == 0 {
                        select! { recv(arx) -> v => v, recv(brx) -> v => v }
                    } else {
                        select! { recv(brx) -> v => v, recv(arx) -> v => v }
                    };
                    match r {
                        Ok(_) => got += 1,
                        // One channel closed: drain the other.
                        Err(_) => return got + arx.iter().count() + brx.iter().count(),
                    }
                }
            })
        })
        .collect();
    senders.into_iter().for_each(|h| h.join().unwrap());
    let total: usize = receivers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 4 * n);
}

#[test]
fn dynamic_select_over_a_runtime_list() {
    use runtime::chan::select::{Mode, RecvArm, Selected, select};
    let chans: Vec<_> = (0..20).map(|_| chan::bounded::<usize>(1)).collect();
    chans[13].0.send(1313).unwrap();
    let arms: Vec<_> = chans.iter().map(|(_, rx)| RecvArm::new(rx)).collect();
    let ops: Vec<_> = arms.iter().map(|a| a.op()).collect();
    assert_eq!(select(&ops, Mode::Block), Selected::Arm(13));
    assert_eq!(arms[13].take(), Some(Ok(1313)));
    let arms: Vec<_> = chans.iter().map(|(_, rx)| RecvArm::new(rx)).collect();
    let ops: Vec<_> = arms.iter().map(|a| a.op()).collect();
    assert_eq!(select(&ops, Mode::NonBlocking), Selected::Default);
    assert_eq!(
        select(&ops, Mode::timeout(Duration::from_millis(5))),
        Selected::Timeout
    );
}

#[test]
fn select_timeouts_racing_sends_lose_nothing() {
    // Timers firing at the same moment as channel operations: every value
    // is either received by exactly one select or handed back to its
    // sender, never both or neither.
    let rounds = if under_qemu() { 300 } else { 3000 };
    let (tx, rx) = chan::bounded::<usize>(0);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let tx = tx.clone();
            runtime::go(move || {
                (0..rounds)
                    .filter(|&i| {
                        select! {
                            send(tx, i) -> r => r.is_err(),
                            timeout(Duration::from_micros(30)) => true,
                        }
                    })
                    .count()
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            runtime::go(move || {
                let mut got = 0usize;
                loop {
                    select! {
                        recv(rx) -> v => match v {
                            Ok(_) => got += 1,
                            Err(_) => return got,
                        },
                        timeout(Duration::from_micros(20)) => {}
                    }
                }
            })
        })
        .collect();
    let back: usize = senders.into_iter().map(|h| h.join().unwrap()).sum();
    let got: usize = receivers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(back + got, 2 * rounds, "received {got}, handed back {back}");
}
