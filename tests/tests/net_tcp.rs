//! TCP on the netpoller: many concurrent connections, accept from many Gs,
//! plain threads, errors. Every test runs with `procs = 2`.

use runtime::net::{TcpListener, TcpStream};
use runtime::sync::WaitGroup;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn init() {
    // Whichever test starts the runtime fixes procs = 2 for the process.
    runtime::Builder::new().procs(2).build().ok();
}

/// Accepts forever, echoing each connection in its own G.
fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    runtime::go(move || {
        for s in l.incoming() {
            let mut s = match s {
                Ok(s) => s,
                Err(e) => panic!("accept: {e}"),
            };
            runtime::go(move || {
                let mut buf = [0u8; 512];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Symptom guarded: parked I/O holds an M (thread blow-up), readiness is
/// lost under load (a hang), or data is mixed between connections.
#[test]
fn ten_thousand_concurrent_connections_echo() {
    init();
    let mut n = if tests::under_qemu() { 500 } else { 10_000 };
    let limit = tests::raise_nofile();
    // Two descriptors per connection (both ends live here) plus slack.
    let fits = (limit.saturating_sub(256) / 2) as usize;
    if fits < n {
        println!("note: RLIMIT_NOFILE hard limit {limit} fits {fits} connections, not {n}");
        n = fits;
    }
    let addr = echo_server();
    let connected = Arc::new(WaitGroup::new());
    let gate = Arc::new(WaitGroup::new());
    let done = Arc::new(WaitGroup::new());
    let ok = Arc::new(AtomicUsize::new(0));
    gate.add(1);
    for i in 0..n {
        connected.add(1);
        done.add(1);
        let (connected, gate, done, ok) =
            (connected.clone(), gate.clone(), done.clone(), ok.clone());
        runtime::go(move || {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.set_nodelay(true).unwrap();
            connected.done();
            // All connections are open at once before any echo starts.
            gate.wait();
            let mut good = true;
            for round in 0..3u32 {
                let msg =
                    format!("conn {i} round {round} ........................................");
                c.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                c.read_exact(&mut back).unwrap();
                good &= back == msg.as_bytes();
            }
            if good {
                ok.fetch_add(1, Ordering::Relaxed);
            }
            done.done();
        });
    }
    connected.wait();
    let threads = runtime::stats().threaded_ms();
    gate.done();
    done.wait();
    assert_eq!(ok.load(Ordering::Relaxed), n, "some echoes came back wrong");
    // Gs waiting for I/O hold no M: the thread count stays near procs.
    assert!(threads < 64, "{threads} Ms for {n} parked connections");
}

/// Symptom guarded: several Gs in accept on one listener lose or duplicate
/// connections (a wake-up for one wakes none, or two take one).
#[test]
fn accept_from_many_gs() {
    init();
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let total = 200usize;
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut acceptors = Vec::new();
    for _ in 0..8 {
        let (l, accepted) = (l.clone(), accepted.clone());
        acceptors.push(runtime::go(move || {
            let mut mine = 0usize;
            while accepted.load(Ordering::SeqCst) < total {
                let (mut s, _) = l.accept().unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                if b[0] == b'q' {
                    break;
                }
                accepted.fetch_add(1, Ordering::SeqCst);
                mine += 1;
                s.write_all(b"k").unwrap();
            }
            mine
        }));
    }
    let clients: Vec<_> = (0..total)
        .map(|_| {
            runtime::go(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"x").unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                b[0]
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), b'k');
    }
    // Release acceptors still parked in accept.
    for _ in 0..8 {
        if let Ok(mut c) = TcpStream::connect(addr) {
            c.write_all(b"q").ok();
        }
    }
    let sum: usize = acceptors.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, total);
}

/// Symptom guarded: a socket used from a plain thread (no G) panics or
/// spins instead of blocking the thread.
#[test]
fn sockets_work_from_plain_threads() {
    init();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        buf
    });
    // The client sleeps first so the server really blocks in accept.
    let client = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        back
    });
    assert_eq!(&client.join().unwrap(), b"hello");
    assert_eq!(&server.join().unwrap(), b"hello");
    // And a plain-thread client against a G server.
    let addr = echo_server();
    let mut c = TcpStream::connect(addr).unwrap();
    (&c).write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
}

/// Symptom guarded: `try_clone` handles share one registration (a reader
/// and a writer G steal each other's wake-ups), or shutdown is not seen.
#[test]
fn clone_shutdown_and_addresses() {
    init();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = runtime::go(move || {
        let (s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        (&s).read_to_end(&mut got).unwrap();
        got
    });
    let c = TcpStream::connect(addr).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    assert!(c.local_addr().unwrap().ip().is_loopback());
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    let w = c.try_clone().unwrap();
    let writer = runtime::go(move || {
        for _ in 0..100 {
            (&w).write_all(&[7u8; 1000]).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    writer.join().unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().all(|&b| b == 7));
    // The server closed its end: our read sees end of stream.
    let mut b = [0u8; 1];
    assert_eq!((&c).read(&mut b).unwrap(), 0);
}

/// Symptom guarded: connect errors are swallowed or hang.
#[test]
fn connect_refused_and_bad_input() {
    init();
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = runtime::go(move || TcpStream::connect(addr).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let e = TcpListener::bind("not an address").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let c = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _ = l.accept().unwrap();
        c
    };
    let e = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let t = Instant::now();
    let e = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// A connected pair: (client, server side), both with a 10 s read timeout
/// so that a lost wake-up fails the test with `TimedOut` instead of hanging.
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    for x in [&c, &s] {
        x.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        x.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        x.set_nodelay(true).unwrap();
    }
    (c, s)
}

/// Symptom guarded: a read that emptied the receive queue makes the next
/// read park without trying the socket; data arriving just after it (while
/// or after the reader parks) must still wake it, whatever the timing.
#[test]
fn reads_after_a_drained_read_see_every_later_arrival() {
    init();
    let rounds = if tests::under_qemu() { 300 } else { 3_000 };
    let (mut c, mut s) = pair();
    let reader = runtime::go(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < rounds * 3 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "early end of stream after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    for i in 0..rounds {
        let b = [(i % 251) as u8; 3];
        c.write_all(&b[..1]).unwrap();
        // Vary the gap so the next bytes land before, during and after the
        // reader's park.
        match i % 3 {
            0 => runtime::yield_now(),
            1 => runtime::sleep(Duration::from_micros(50)),
            _ => {}
        }
        c.write_all(&b[1..]).unwrap();
    }
    let got = reader.join().unwrap();
    for (i, chunk) in got.chunks(3).enumerate() {
        assert_eq!(chunk, [(i % 251) as u8; 3], "round {i}");
    }
}

/// Symptom guarded: after a read that drained the data, the peer's close
/// arrives with no new data; the next read must see end of stream, not park
/// for good. Both orders: the close already queued behind the data, and the
/// close arriving after the drained read.
#[test]
fn end_of_stream_after_a_drained_read() {
    init();
    for late_close in [false, true] {
        let (mut c, mut s) = pair();
        c.write_all(b"hello").unwrap();
        if !late_close {
            c.shutdown(Shutdown::Write).unwrap();
            runtime::sleep(Duration::from_millis(5));
        }
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).unwrap(), 5);
        if late_close {
            runtime::go(move || {
                runtime::sleep(Duration::from_millis(5));
                c.shutdown(Shutdown::Write).unwrap();
                runtime::sleep(Duration::from_millis(50));
            });
        }
        let t = Instant::now();
        assert_eq!(s.read(&mut buf).unwrap(), 0, "late_close={late_close}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

/// Symptom guarded: a short write (the send buffer is full) makes the next
/// write park first; space freed by the reader must wake it, and no byte is
/// lost or reordered.
#[test]
fn writes_after_a_full_send_buffer_resume() {
    init();
    let total = if tests::under_qemu() {
        2 << 20
    } else {
        16 << 20
    };
    let (mut c, mut s) = pair();
    let writer = runtime::go(move || {
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(256 * 1024);
            // Each byte's value is its stream offset mod 253.
            let piece: Vec<u8> = (sent..sent + n).map(|i| (i % 253) as u8).collect();
            c.write_all(&piece).unwrap();
            sent += n;
        }
    });
    let mut buf = vec![0u8; 4096];
    let mut seen = 0usize;
    while seen < total {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b as usize, (seen + k) % 253, "byte {}", seen + k);
        }
        seen += n;
        if seen % (1 << 20) < 4096 {
            // Let the writer's buffer fill now and then.
            runtime::sleep(Duration::from_millis(1));
        }
    }
    writer.join().unwrap();
}
