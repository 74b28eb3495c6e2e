//! Channel semantics, re-expressing the scenarios of Go's channel tests in
//! gort: FIFO per sender, close, len/cap, rendezvous, non-blocking
//! operations, timeouts, many producers and consumers, plain threads.

use runtime::chan::{
    self, RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tests::under_qemu;

/// Scales a count down under qemu (tens of times slower).
fn scaled(n: usize) -> usize {
    if under_qemu() { (n / 20).max(10) } else { n }
}

#[test]
fn buffered_fifo_len_cap() {
    let (tx, rx) = chan::bounded::<i32>(3);
    assert_eq!(tx.capacity(), Some(3));
    assert_eq!(rx.len(), 0);
    assert!(rx.is_empty());
    for i in 0..3 {
        tx.try_send(i).unwrap();
        assert_eq!(tx.len(), i as usize + 1);
    }
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
    for i in 0..3 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let (utx, urx) = chan::unbounded::<u8>();
    assert_eq!(urx.capacity(), None);
    for i in 0..200 {
        utx.try_send(i).unwrap();
    }
    assert_eq!(urx.len(), 200);
    assert!(urx.try_iter().eq(0..200));
}

#[test]
fn fifo_order_per_sender_with_many_senders() {
    // Go's TestChan "FIFO per sender": each receiver sees every sender's
    // values in the order that sender sent them.
    for cap in [0, 1, 7, 100] {
        let senders = 4;
        let per = scaled(2000);
        let (tx, rx) = chan::bounded::<(usize, usize)>(cap);
        let hs: Vec<_> = (0..senders)
            .map(|s| {
                let tx = tx.clone();
                runtime::go(move || (0..per).for_each(|i| tx.send((s, i)).unwrap()))
            })
            .collect();
        drop(tx);
        let mut next = vec![0usize; senders];
        for (s, i) in &rx {
            assert_eq!(i, next[s], "cap {cap}: sender {s} out of order");
            next[s] += 1;
        }
        assert!(
            next.iter().all(|&n| n == per),
            "cap {cap}: lost values {next:?}"
        );
        hs.into_iter().for_each(|h| h.join().unwrap());
    }
}

#[test]
fn close_drains_then_reports_closed_and_refuses_sends() {
    let (tx, rx) = chan::bounded::<String>(4);
    tx.send("a".into()).unwrap();
    tx.send("b".into()).unwrap();
    assert!(tx.close());
    assert!(!tx.close(), "second close must report it was closed");
    assert!(rx.is_closed());
    // The value comes back in the error.
    let e = tx.send("c".into()).unwrap_err();
    assert_eq!(e.to_string(), "send on closed channel");
    assert_eq!(e.into_inner(), "c");
    assert_eq!(
        tx.try_send("d".into()),
        Err(TrySendError::Closed("d".into()))
    );
    assert_eq!(rx.recv().as_deref(), Ok("a"));
    assert_eq!(rx.recv().as_deref(), Ok("b"));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Closed)
    );
    // Errors are std errors.
    let boxed: Box<dyn std::error::Error> = Box::new(RecvError);
    assert_eq!(boxed.to_string(), "receive on closed and empty channel");
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    let n = 8;
    // Receivers parked on an empty channel.
    let (tx, rx) = chan::bounded::<u32>(0);
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let rx = rx.clone();
            runtime::go(move || rx.recv())
        })
        .collect();
    runtime::sleep(Duration::from_millis(20));
    tx.close();
    for h in hs {
        assert_eq!(h.join().unwrap(), Err(RecvError));
    }
    // Senders parked on a full channel get their values back.
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(0).unwrap();
    let hs: Vec<_> = (1..=n)
        .map(|i| {
            let tx = tx.clone();
            runtime::go(move || tx.send(i).map_err(|e| e.into_inner()))
        })
        .collect();
    runtime::sleep(Duration::from_millis(20));
    rx.close();
    let mut back: Vec<u32> = hs
        .into_iter()
        .map(|h| h.join().unwrap().unwrap_err())
        .collect();
    back.sort();
    assert_eq!(back, (1..=n).collect::<Vec<_>>());
    assert_eq!(rx.recv(), Ok(0), "the buffered value survives close");
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_all_senders_closes_dropping_all_receivers_fails_sends() {
    let (tx, rx) = chan::bounded::<i32>(2);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "one sender is left");
    tx2.send(2).unwrap();
    drop(tx2);
    assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);

    let (tx, rx) = chan::bounded::<i32>(0);
    let h = runtime::go(move || tx.send(5).map_err(|e| e.into_inner()));
    runtime::sleep(Duration::from_millis(20));
    drop(rx);
    assert_eq!(h.join().unwrap(), Err(5), "a blocked sender is released");
}

#[test]
fn rendezvous_send_waits_for_a_receiver() {
    let (tx, rx) = chan::bounded::<u64>(0);
    assert_eq!(tx.capacity(), Some(0));
    assert_eq!(
        tx.try_send(1),
        Err(TrySendError::Full(1)),
        "no receiver waiting"
    );
    let sent = Arc::new(AtomicBool::new(false));
    let s = sent.clone();
    let h = runtime::go(move || {
        tx.send(42).unwrap();
        s.store(true, Ordering::SeqCst);
    });
    runtime::sleep(Duration::from_millis(30));
    assert!(
        !sent.load(Ordering::SeqCst),
        "send completed with no receiver"
    );
    assert_eq!(rx.len(), 0, "an unbuffered channel buffers nothing");
    assert_eq!(rx.recv(), Ok(42));
    h.join().unwrap();
    assert!(sent.load(Ordering::SeqCst));
    // A waiting receiver makes try_send succeed.
    let (tx, rx) = chan::bounded::<u64>(0);
    let h = runtime::go(move || rx.recv());
    let start = Instant::now();
    loop {
        match tx.try_send(7) {
            Ok(()) => break,
            Err(TrySendError::Full(_)) => runtime::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "receiver never waited"
        );
    }
    assert_eq!(h.join().unwrap(), Ok(7));
}

#[test]
fn many_senders_many_receivers_no_loss_no_duplicates() {
    for cap in [0, 1, 64] {
        let (senders, receivers, per) = (8, 8, scaled(5000));
        let (tx, rx) = chan::bounded::<usize>(cap);
        let seen: Arc<Vec<AtomicUsize>> =
            Arc::new((0..senders * per).map(|_| AtomicUsize::new(0)).collect());
        let rs: Vec<_> = (0..receivers)
            .map(|_| {
                let (rx, seen) = (rx.clone(), seen.clone());
                runtime::go(move || {
                    let mut n = 0;
                    for v in &rx {
                        seen[v].fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        drop(rx);
        let ss: Vec<_> = (0..senders)
            .map(|s| {
                let tx = tx.clone();
                runtime::go(move || (0..per).for_each(|i| tx.send(s * per + i).unwrap()))
            })
            .collect();
        drop(tx);
        ss.into_iter().for_each(|h| h.join().unwrap());
        let total: usize = rs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, senders * per, "cap {cap}");
        for (v, c) in seen.iter().enumerate() {
            assert_eq!(
                c.load(Ordering::Relaxed),
                1,
                "cap {cap}: value {v} seen wrong number of times"
            );
        }
    }
}

#[test]
fn plain_threads_and_gs_mixed() {
    // Senders are OS threads (they block), receivers are Gs (they park),
    // and the other way round.
    let per = scaled(3000);
    let (tx, rx) = chan::bounded::<usize>(0);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || (0..per).for_each(|i| tx.send(i).unwrap()))
        })
        .collect();
    drop(tx);
    let g = runtime::go(move || rx.iter().sum::<usize>());
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(g.join().unwrap(), 3 * per * (per - 1) / 2);

    let (tx, rx) = chan::bounded::<usize>(2);
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let tx = tx.clone();
            runtime::go(move || (0..per).for_each(|i| tx.send(i).unwrap()))
        })
        .collect();
    drop(tx);
    let t = std::thread::spawn(move || rx.iter().sum::<usize>());
    gs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(t.join().unwrap(), 3 * per * (per - 1) / 2);
}

#[test]
fn unbounded_never_blocks_a_sender() {
    let (tx, rx) = chan::unbounded::<usize>();
    let n = scaled(100_000);
    // No receiver runs until every send is done.
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(rx.len(), n);
    assert!(rx.into_iter().eq(0..n));
}

#[test]
fn timeouts_expire_and_give_values_back() {
    let slack = if under_qemu() { 60 } else { 10 };
    // From a G.
    let h = runtime::go(move || {
        let (tx, rx) = chan::bounded::<i32>(0);
        let t = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(RecvTimeoutError::Timeout)
        );
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(30),
            "woke early: {waited:?}"
        );
        assert!(waited < Duration::from_secs(slack), "woke late: {waited:?}");
        let t = Instant::now();
        assert_eq!(
            tx.send_timeout(3, Duration::from_millis(30)),
            Err(SendTimeoutError::Timeout(3))
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        // Past deadlines fail at once; a zero timeout is a try.
        assert_eq!(
            rx.recv_deadline(Instant::now() - Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        // The channel still works after timed-out waits left its queues.
        let h = runtime::go(move || tx.send(11));
        assert_eq!(rx.recv_timeout(Duration::from_secs(slack)), Ok(11));
        h.join().unwrap().unwrap();
    });
    h.join().unwrap();
    // From a plain thread.
    let (tx, rx) = chan::bounded::<i32>(0);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let g = runtime::go(move || {
        runtime::sleep(Duration::from_millis(10));
        tx.send(1).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(slack)), Ok(1));
    g.join().unwrap();
}

#[test]
fn timeout_racing_a_send_delivers_exactly_once() {
    // Go's "TestSelectStress"-like race of a timer against a sender: every
    // value is either received or handed back, never both or neither.
    let rounds = scaled(2000);
    let (tx, rx) = chan::bounded::<usize>(0);
    let sender = runtime::go(move || {
        let mut back = 0;
        for i in 0..rounds {
            if tx.send_timeout(i, Duration::from_micros(50)).is_err() {
                back += 1;
            }
        }
        back
    });
    let receiver = runtime::go(move || {
        let mut got = 0;
        loop {
            match rx.recv_timeout(Duration::from_micros(40)) {
                Ok(_) => got += 1,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Closed) => return got,
            }
        }
    });
    let back = sender.join().unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(back + got, rounds, "got {got}, handed back {back}");
}

#[test]
fn long_timeouts_that_never_expire_do_not_pile_up() {
    // A loop of recv_timeout with a long timeout, always satisfied first:
    // the stopped timers are discarded, the loop stays fast.
    let n = scaled(20_000);
    let (tx, rx) = chan::bounded::<usize>(16);
    let h = runtime::go(move || (0..n).for_each(|i| tx.send(i).unwrap()));
    let g = runtime::go(move || {
        let mut sum = 0;
        while let Ok(v) = rx.recv_timeout(Duration::from_secs(3600)) {
            sum += v;
        }
        sum
    });
    h.join().unwrap();
    assert_eq!(g.join().unwrap(), n * (n - 1) / 2);
}

#[test]
fn handles_are_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>(_: &T) {}
    let (tx, rx) = chan::bounded::<Vec<u8>>(1);
    check(&tx);
    check(&rx);
    // Shared by reference between a G and a thread.
    let rx = Arc::new(rx);
    let r2 = rx.clone();
    let t = std::thread::spawn(move || r2.recv());
    runtime::go(move || tx.send(vec![1, 2]).unwrap())
        .join()
        .unwrap();
    assert_eq!(t.join().unwrap(), Ok(vec![1, 2]));
}
