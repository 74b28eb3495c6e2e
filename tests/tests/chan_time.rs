//! `runtime::time`: `after`, tickers and timer order, on the scheduler's
//! timers.

use runtime::chan::{self, RecvTimeoutError};
use runtime::select;
use runtime::time::{self, Ticker, ZeroPeriod};
use std::time::{Duration, Instant};
use tests::under_qemu;

fn slack() -> Duration {
    Duration::from_secs(if under_qemu() { 120 } else { 20 })
}

#[test]
fn after_delivers_once_after_the_delay() {
    let h = runtime::go(|| {
        let t = Instant::now();
        let rx = time::after(Duration::from_millis(30));
        let at = rx.recv().unwrap();
        assert!(at.duration_since(t) >= Duration::from_millis(30));
        assert!(t.elapsed() < slack());
        // Go's After channel never closes and never fires twice.
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
    });
    h.join().unwrap();
    // From a plain thread.
    let t = Instant::now();
    time::after(Duration::from_millis(10)).recv().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[test]
fn after_as_a_select_timeout() {
    let (_tx, rx) = chan::bounded::<i32>(0);
    let timeout = time::after(Duration::from_millis(20));
    let r = select! {
        recv(rx) -> _ => "value",
        recv(timeout) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
}

#[test]
fn timers_fire_in_deadline_order() {
    // Gs start timers with absolute deadlines, in scrambled order. The
    // instants the timers delivered (taken when each fired, before any G
    // runs) are in deadline order.
    let n = 40u32;
    let step = Duration::from_millis(if under_qemu() { 40 } else { 10 });
    let base = Instant::now() + Duration::from_millis(30);
    let (tx, rx) = chan::unbounded::<(u32, Instant)>();
    let hs: Vec<_> = (0..n)
        .map(|i| (i * 17) % n)
        .map(|k| {
            let tx = tx.clone();
            runtime::go(move || {
                let deadline = base + step * k;
                let rx = time::after(deadline.saturating_duration_since(Instant::now()));
                let at = rx.recv().unwrap();
                assert!(at >= deadline, "timer {k} fired early");
                tx.send((k, at)).unwrap();
            })
        })
        .collect();
    drop(tx);
    hs.into_iter().for_each(|h| h.join().unwrap());
    let mut fired: Vec<(u32, Instant)> = rx.iter().collect();
    fired.sort_by_key(|&(_, at)| at);
    let order: Vec<u32> = fired.iter().map(|&(k, _)| k).collect();
    assert_eq!(order, (0..n).collect::<Vec<_>>());
}

#[test]
fn sleeping_gs_wake_after_their_deadlines() {
    // In this shared process other tests' Gs compete for the Ps, so only
    // "never early" is asserted here; the order is checked in a process of
    // its own (`sleeping_gs_wake_in_deadline_order`).
    let n = 30u32;
    let step = Duration::from_millis(if under_qemu() { 40 } else { 8 });
    let base = Instant::now() + Duration::from_millis(20);
    let (tx, rx) = chan::unbounded::<(u32, Instant)>();
    for k in (0..n).rev() {
        let tx = tx.clone();
        runtime::go(move || {
            time::sleep_until(base + step * k);
            tx.send((k, Instant::now())).unwrap();
        });
    }
    drop(tx);
    let woke: Vec<(u32, Instant)> = rx.iter().collect();
    assert_eq!(woke.len(), n as usize);
    for &(k, at) in &woke {
        assert!(at >= base + step * k, "G {k} woke before its deadline");
    }
}

#[test]
fn sleeping_gs_wake_in_deadline_order() {
    let limit = Duration::from_secs(if under_qemu() { 240 } else { 60 });
    let o = tests::scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "chan_sleep_order",
        &[],
        limit,
    );
    o.assert_success();
    assert_eq!(o.value("woke"), Some("30"), "{o}");
    assert_eq!(o.value("early"), Some("0"), "{o}");
    // Only Gs whose deadline was still ahead when they slept are ordered by
    // the timers; most must be, or the check says nothing.
    let slept: usize = o.parse("slept");
    assert!(slept >= 20, "{o}");
    // Gs readied together run on two Ms and may swap when the machine is
    // loaded; a reversed or random order would show far more inversions
    // than this allows.
    let inversions: usize = o.parse("inversions");
    assert!(inversions <= 7, "{o}");
}

#[test]
fn ticker_ticks_periodically_and_stops() {
    let h = runtime::go(|| {
        let period = Duration::from_millis(10);
        let t0 = Instant::now();
        let ticker = Ticker::new(period).unwrap();
        let mut last = t0;
        for i in 1..=5u32 {
            let at = ticker.chan().recv().unwrap();
            assert!(at > last, "tick {i} not after the previous one");
            assert!(at.duration_since(t0) >= period * i - Duration::from_millis(1) || i > 1);
            last = at;
        }
        assert!(t0.elapsed() >= period * 5);
        ticker.stop();
        // A tick may have been buffered before stop; none after it.
        let _ = ticker.chan().try_recv();
        assert_eq!(
            ticker.chan().recv_timeout(Duration::from_millis(50)),
            Err(RecvTimeoutError::Timeout)
        );
        // Reset restarts it.
        ticker.reset(Duration::from_millis(5)).unwrap();
        assert!(ticker.chan().recv_timeout(slack()).is_ok());
    });
    h.join().unwrap();
}

#[test]
fn slow_receiver_misses_ticks_instead_of_queueing_them() {
    let ticker = Ticker::new(Duration::from_millis(2)).unwrap();
    runtime::sleep(Duration::from_millis(50));
    // About 25 ticks passed; the channel holds one. Stopped first, so that
    // no tick lands between the checks (a slow machine, qemu-user).
    ticker.stop();
    assert_eq!(ticker.chan().len(), 1);
    assert!(ticker.chan().try_recv().is_ok());
    assert!(ticker.chan().try_recv().is_err());
}

#[test]
fn tick_and_zero_periods() {
    assert_eq!(Ticker::new(Duration::ZERO).unwrap_err(), ZeroPeriod);
    assert_eq!(
        time::tick(Duration::ZERO).unwrap_err().to_string(),
        "ticker: the period must be positive"
    );
    let rx = time::tick(Duration::from_millis(3)).unwrap();
    let a = rx.recv().unwrap();
    let b = rx.recv().unwrap();
    assert!(b > a);
    drop(rx);
}

#[test]
fn many_parked_gs_woken_by_timers() {
    // Every G parks in a receive that only its timer ends.
    let n = if under_qemu() { 200 } else { 5000 };
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            runtime::go(move || {
                let (_tx, rx) = chan::bounded::<()>(0);
                rx.recv_timeout(Duration::from_millis(20 + (i % 10) as u64))
                    .unwrap_err()
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), RecvTimeoutError::Timeout);
    }
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(t.elapsed() < slack());
}
