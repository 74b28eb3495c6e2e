//! Read and write deadlines, on Gs and on plain threads, and I/O waits
//! that the deadlock check must not mistake for a deadlock.

use runtime::net::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use tests::{scenario, under_qemu};

/// A connected pair: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Symptom guarded: a read with a timeout waits forever (no timer armed) or
/// fails early.
#[test]
fn read_deadline_fires() {
    let (c, s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let g = runtime::go(move || {
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let e = (&c).read(&mut buf).unwrap_err();
        let took = t.elapsed();
        // After a timeout the socket still works.
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = (&c).read(&mut buf).unwrap();
        (e.kind(), took, buf[..n].to_vec())
    });
    std::thread::sleep(Duration::from_millis(400));
    (&s).write_all(b"late").unwrap();
    let (kind, took, got) = g.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(got, b"late");
}

/// Symptom guarded: a deadline that never fires holds up data that came
/// in time, or a stale deadline timer of an earlier read fails a later one.
#[test]
fn data_in_time_beats_the_deadline() {
    let (c, s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let g = runtime::go(move || {
        let mut buf = [0u8; 1];
        for _ in 0..5 {
            (&c).read_exact(&mut buf).unwrap();
        }
        // The earlier deadlines' timers fire now; this read must not care.
        runtime::sleep(Duration::from_millis(400));
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (&c).read_exact(&mut buf).unwrap();
        buf[0]
    });
    for i in 0..5u8 {
        std::thread::sleep(Duration::from_millis(20));
        (&s).write_all(&[i]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    (&s).write_all(b"z").unwrap();
    assert_eq!(g.join().unwrap(), b'z');
}

/// Symptom guarded: a write to a peer that never reads blocks forever
/// despite a write timeout.
#[test]
fn write_deadline_fires() {
    let (c, _s) = pair();
    c.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let g = runtime::go(move || {
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match (&c).write(&chunk) {
                Ok(n) => sent += n,
                Err(e) => return (e.kind(), sent),
            }
            // Socket buffers are a few MiB at most.
            assert!(sent < 1 << 30, "wrote 1 GiB into a peer that never reads");
        }
    });
    let (kind, sent) = g.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(sent > 0);
}

/// Symptom guarded: deadlines do not work from plain threads (no G, so no
/// timer can wake it: `poll(2)` must time out instead).
#[test]
fn deadlines_on_a_plain_thread() {
    let (c, _s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(80))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 1];
    let e = (&c).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(80));
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(80)));
}

/// Symptom guarded: a G parked on a socket (peer in another process), with
/// the main thread joining it, is reported as "all goroutines are asleep".
#[test]
fn io_wait_is_not_a_deadlock() {
    let limit = Duration::from_secs(if under_qemu() { 120 } else { 30 });
    let o = scenario(
        env!("CARGO_BIN_EXE_scenarios"),
        "net_io_wait_not_deadlock",
        &[],
        limit,
    );
    o.assert_success();
    assert_eq!(o.value("got"), Some("late"), "{o}");
}
