//! UDP on the netpoller: round trips between Gs and plain threads.

use runtime::net::UdpSocket;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

/// Symptom guarded: a G in `recv_from` is never woken by a datagram, or
/// the sender's address is wrong.
#[test]
fn udp_round_trip_between_gs() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let echo = runtime::go(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = runtime::go(move || {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = c.local_addr().unwrap();
        let mut buf = [0u8; 1500];
        for i in 0..100u32 {
            let msg = i.to_le_bytes();
            c.send_to(&msg, addr).unwrap();
            // Loopback UDP does not drop at this rate; a lost datagram
            // would hang, so bound the wait.
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert_eq!(&buf[..n], &msg);
        }
        me
    });
    let me = client.join().unwrap();
    assert!(me.ip().is_loopback());
    echo.join().unwrap();
}

/// Symptom guarded: connected UDP (`connect`/`send`/`recv`) or a plain
/// thread's blocking receive does not work.
#[test]
fn connected_udp_from_a_plain_thread() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).unwrap();
        b.send(&buf[..n]).unwrap();
        n
    });
    // The thread blocks in recv first.
    std::thread::sleep(Duration::from_millis(50));
    let g = runtime::go(move || {
        a.send(b"datagram").unwrap();
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    assert_eq!(g.join().unwrap(), b"datagram");
    assert_eq!(t.join().unwrap(), 8);
}

/// Symptom guarded: a UDP read timeout never fires (no datagram comes).
#[test]
fn udp_read_timeout() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(100)));
    let g = runtime::go(move || {
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let e = s.recv_from(&mut buf).unwrap_err();
        (e.kind(), t.elapsed())
    });
    let (kind, took) = g.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
