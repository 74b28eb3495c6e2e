//! Unix-domain stream sockets on the netpoller.

use runtime::net::{UnixListener, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gort-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Symptom guarded: Unix stream echo loses data or a G in accept/read is
/// never woken.
#[test]
fn unix_stream_echo() {
    let path = temp_path("echo");
    let l = UnixListener::bind(&path).unwrap();
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    let server = runtime::go(move || {
        let mut served = 0;
        for s in l.incoming().take(20) {
            let mut s = s.unwrap();
            runtime::go(move || {
                let mut buf = [0u8; 256];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
            served += 1;
        }
        served
    });
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            runtime::go(move || {
                let mut c = UnixStream::connect(&path).unwrap();
                for r in 0..10 {
                    let msg = format!("client {i} message {r}");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(server.join().unwrap(), 20);
    std::fs::remove_file(&path).unwrap();
}

/// Symptom guarded: `pair`, timeouts and plain-thread use of Unix streams.
#[test]
fn unix_pair_timeout_and_plain_thread() {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 4];
    // Plain thread: nothing was sent yet.
    let e = (&b).read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let w = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        (&a).write_all(b"pong").unwrap();
        a
    });
    b.set_read_timeout(None).unwrap();
    let g = runtime::go(move || {
        let mut buf = [0u8; 4];
        (&b).read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&g.join().unwrap(), b"pong");
    drop(w.join().unwrap());
}

/// Symptom guarded: a bad path is not reported clearly.
#[test]
fn unix_bad_paths() {
    let long = "x".repeat(200);
    let e = UnixListener::bind(&long).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = UnixStream::connect(temp_path("nobody-listens")).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused),
        "{e}"
    );
}
