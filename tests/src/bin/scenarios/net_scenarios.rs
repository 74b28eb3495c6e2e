//! Socket scenarios that need a process of their own.

use runtime::net::TcpListener;
use std::io::{Read, Write};
use std::time::Duration;

/// Symptom guarded: a G parked on a socket read, with the main thread
/// joining it, is reported as a deadlock although a peer outside the
/// process is about to send.
pub fn io_wait_not_deadlock() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The peer is another process (so no thread of ours could wake the G).
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::var("GORT_QEMU_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(q) => {
            let mut c = std::process::Command::new(q);
            c.args(words).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let mut child = cmd
        .arg("net_late_peer")
        .arg(port.to_string())
        .spawn()
        .unwrap();
    let g = runtime::go(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    });
    let got = g.join().unwrap();
    child.wait().unwrap();
    println!("got={}", got.trim());
}

/// The peer of [`io_wait_not_deadlock`]: waits, connects, sends, exits.
pub fn late_peer() {
    let port: u16 = std::env::args().nth(2).unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"late\n").unwrap();
}
