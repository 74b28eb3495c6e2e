//! Sockets made elsewhere and handed to gort (`from_std`, `FromRawFd`,
//! `From<OwnedFd>`), `UnixDatagram`, readiness waits on any descriptor
//! (`PollFd`), and Go's absolute deadlines.

use runtime::net::{PollFd, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A listener made by someone else (systemd, listenfd, socket2 all hand
/// over a raw descriptor): gort accepts on it with parked Gs.
#[test]
fn a_listener_handed_over_as_a_raw_fd_accepts_on_gs() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let fd = std_listener.into_raw_fd();
    // SAFETY: `fd` was just released by its owner and is open.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    assert_eq!(listener.local_addr().unwrap(), addr);
    let server = runtime::go(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        listener
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    // And back to std, in blocking mode.
    let std_again = server.join().unwrap().into_std().unwrap();
    std_again.set_nonblocking(false).unwrap();
    assert_eq!(std_again.local_addr().unwrap(), addr);
}

/// `from_std` of a connected std stream, `OwnedFd` both ways.
#[test]
fn streams_and_datagram_sockets_convert_both_ways() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = UnixStream::from_std(a).unwrap();
    let b = UnixStream::from(OwnedFd::from(b));
    let h = runtime::go(move || {
        let mut buf = [0u8; 3];
        (&b).read_exact(&mut buf).unwrap();
        buf
    });
    (&a).write_all(b"abc").unwrap();
    assert_eq!(&h.join().unwrap(), b"abc");
    let fd: OwnedFd = a.into();
    assert!(fd.as_raw_fd() >= 0);

    let udp = UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    let addr = udp.local_addr().unwrap();
    let raw = udp.into_raw_fd();
    // SAFETY: `raw` was just released by `into_raw_fd` and is open.
    let udp = unsafe { UdpSocket::from_raw_fd(raw) };
    assert_eq!(udp.local_addr().unwrap(), addr);
    let std_udp = udp.into_std().unwrap();
    std_udp
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut buf = [0u8; 1];
    // Blocking again: the std socket waits its own timeout.
    let e = std_udp.recv(&mut buf).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
}

/// Symptom: datagrams between Gs are lost, or a receiver blocks its M.
#[test]
fn unix_datagrams_between_gs() {
    let dir = std::env::temp_dir().join(format!("gort-dgram-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    let got = runtime::go(move || {
        let mut total = 0;
        let mut buf = [0u8; 64];
        for _ in 0..100 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert!(from.as_pathname().is_none(), "unbound sender has no path");
            total += n;
        }
        total
    });
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            runtime::go(move || {
                let c = UnixDatagram::unbound().unwrap();
                for _ in 0..25 {
                    c.send_to(b"datagram", &path).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(got.join().unwrap(), 800);

    let (a, b) = UnixDatagram::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    a.send(b"x").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Symptom: a G cannot wait for a pipe without blocking its M, or a
/// readiness wait ignores its deadline.
#[test]
fn poll_fd_parks_on_a_pipe_with_deadlines() {
    let (r, mut w) = std::io::pipe().unwrap();
    let r = PollFd::new(r).unwrap();
    let h = runtime::go(move || {
        let t = Instant::now();
        let e = r.readable(Some(Instant::now() + Duration::from_millis(100)));
        let waited = t.elapsed();
        let mut buf = [0u8; 16];
        let n = r.read_with(None, |mut p| p.read(&mut buf)).unwrap();
        (e.unwrap_err().kind(), waited, buf[..n].to_vec())
    });
    std::thread::sleep(Duration::from_millis(300));
    w.write_all(b"late data").unwrap();
    let (kind, waited, data) = h.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert_eq!(data, b"late data");
}

/// A writer that fills a pipe parks until the reader drains it.
#[test]
fn poll_fd_writable_parks_while_the_pipe_is_full() {
    let (mut r, w) = std::io::pipe().unwrap();
    let w = PollFd::new(w).unwrap();
    let writer = runtime::go(move || {
        let chunk = [7u8; 4096];
        let mut sent = 0usize;
        while sent < 1 << 20 {
            sent += w.write_with(None, |mut p| p.write(&chunk)).unwrap();
        }
        sent
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    while got < 1 << 20 {
        got += r.read(&mut buf).unwrap();
    }
    assert_eq!(writer.join().unwrap(), 1 << 20);
}

/// Bad input: a regular file cannot be polled, and says so.
#[test]
fn poll_fd_refuses_a_regular_file_clearly() {
    let f = std::fs::File::open("/proc/self/exe").unwrap();
    let e = PollFd::new(f).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("cannot be polled"), "{e}");
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Symptom (the issue's): a client sending one byte every 150 ms defeats a
/// 200 ms per-call timeout forever. An absolute read deadline ends the
/// exchange.
#[test]
fn a_read_deadline_bounds_a_slow_trickle() {
    let (c, s) = tcp_pair();
    let trickle = runtime::go(move || {
        for _ in 0..40 {
            if (&c).write_all(b".").is_err() {
                break;
            }
            runtime::sleep(Duration::from_millis(150));
        }
    });
    let reader = runtime::go(move || {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        s.set_read_deadline(Some(start + Duration::from_millis(700)));
        let mut got = 0;
        let mut buf = [0u8; 16];
        let e = loop {
            match (&s).read(&mut buf) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        drop(s);
        (e.kind(), got, start.elapsed())
    });
    let (kind, got, took) = reader.join().unwrap();
    trickle.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(got >= 2, "the trickle arrived ({got} bytes)");
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Go's way to stop a blocked call: a deadline in the past, set from
/// another G, fails a read or an accept that is already waiting.
#[test]
fn a_past_deadline_wakes_calls_already_waiting() {
    let (c, s) = tcp_pair();
    let s = std::sync::Arc::new(s);
    let s2 = s.clone();
    let reader = runtime::go(move || {
        let mut buf = [0u8; 4];
        (&*s2).read(&mut buf).unwrap_err().kind()
    });
    let l = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = l.clone();
    let acceptor = runtime::go(move || l2.accept().unwrap_err().kind());
    runtime::sleep(Duration::from_millis(100));
    s.set_read_deadline(Some(Instant::now()));
    l.set_deadline(Some(Instant::now()));
    assert_eq!(reader.join().unwrap(), ErrorKind::TimedOut);
    assert_eq!(acceptor.join().unwrap(), ErrorKind::TimedOut);
    // Cleared, the socket works again.
    s.set_read_deadline(None);
    (&c).write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    (&*s).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
}

/// The same for a plain thread blocked in `poll(2)`: it notices the new
/// deadline within its re-check interval.
#[test]
fn a_past_deadline_reaches_a_plain_thread_too() {
    let l = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = l.clone();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        (l2.accept().unwrap_err().kind(), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    l.set_deadline(Some(Instant::now()));
    let (kind, took) = t.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(took < Duration::from_secs(10), "{took:?}");
}
