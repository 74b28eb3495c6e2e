//! A TCP echo server: one G per connection, on gort's netpoller.
//!
//! ```text
//! cargo run --release -p gort --example echo_server [ADDR]
//! nc 127.0.0.1 7007          # type lines; they come back
//! cargo run -p gort --example echo_server -- --self-test
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:7007`. `--self-test` listens on a free
//! port, runs a few hundred clients against itself (each in its own G),
//! checks every echo, prints a summary and exits (status 1 on a mismatch).

use runtime::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

/// Echoes everything `s` sends until it closes.
fn serve(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("echo_server: read: {e}");
                return;
            }
        }
    }
}

/// Accepts forever, one G per connection.
fn accept_loop(l: TcpListener) {
    for s in l.incoming() {
        match s {
            Ok(s) => {
                runtime::go(move || serve(s));
            }
            Err(e) => eprintln!("echo_server: accept: {e}"),
        }
    }
}

/// One client: `rounds` messages, each checked. Returns whether all came
/// back intact.
fn client(addr: SocketAddr, id: usize, rounds: usize) -> std::io::Result<bool> {
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut ok = true;
    for r in 0..rounds {
        let msg = format!("client {id} says hello #{r}\n");
        c.write_all(msg.as_bytes())?;
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back)?;
        ok &= back == msg.as_bytes();
    }
    Ok(ok)
}

fn self_test() -> ExitCode {
    let l = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo_server: bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = l.local_addr().expect("local_addr of a bound listener");
    runtime::go(move || accept_loop(l));
    let (clients, rounds) = (200, 50);
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| runtime::go(move || client(addr, id, rounds)))
        .collect();
    let mut good = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(true)) => good += 1,
            Ok(Ok(false)) => eprintln!("echo_server: an echo came back wrong"),
            Ok(Err(e)) => eprintln!("echo_server: client: {e}"),
            Err(_) => eprintln!("echo_server: a client panicked"),
        }
    }
    let took = t.elapsed();
    println!(
        "self-test: {good}/{clients} clients x {rounds} echoes ok in {:.1} ms ({:.0} requests/s)",
        took.as_secs_f64() * 1e3,
        (clients * rounds) as f64 / took.as_secs_f64()
    );
    if good == clients {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--self-test") {
        return self_test();
    }
    if arg.as_deref().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: echo_server [ADDR | --self-test]");
        return ExitCode::from(2);
    }
    let addr = arg.unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let l = match TcpListener::bind(addr.as_str()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo_server: bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "echo_server: listening on {}; try `nc {}`",
        l.local_addr().map_or(addr.clone(), |a| a.to_string()),
        addr.replace(':', " ")
    );
    // The accept loop runs in a G; the main thread waits for it (forever).
    let _ = runtime::go(move || accept_loop(l)).join();
    ExitCode::SUCCESS
}
