//! A small HTTP/1.1 server a Go programmer would recognise: one G per
//! connection, plain blocking code, and the pieces a real service needs
//! from the rest of the Rust world.
//!
//! - The listening socket is handed in as a raw descriptor (`--listen-fd N`,
//!   or systemd's socket activation: `LISTEN_FDS=1` means fd 3), or bound
//!   from an address (`--listen ADDR`).
//! - `GET /` answers `hello from gort`; `GET /uname` runs `uname -sr` as a
//!   child process (`runtime::process`); `GET /fetch` fetches `/` from this
//!   server again with an async client (tokio's `TcpStream`) on a tokio
//!   runtime of its own threads, waited for with `runtime::block_on`.
//! - Each connection has an absolute read deadline (a client that trickles
//!   bytes cannot hold a connection for ever).
//! - SIGUSR1 writes a live dump of every G to stderr (`runtime::dump`);
//!   SIGINT or SIGTERM (Ctrl-C) stops accepting (a past accept deadline),
//!   lets the requests in flight finish (`runtime::scope`), and exits 0.
//!
//! `cargo run --release --example httpd -- --listen 127.0.0.1:8080`, or
//! `-- --selftest`: the program starts itself as a child process with a
//! listener handed over as a descriptor, sends it requests, asks it for a
//! live dump, sends it SIGINT, checks each answer, and exits 0 only if all
//! were right (CI runs this).

use runtime::net::{TcpListener, TcpStream};
use runtime::signal::{self, Signal};
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

runtime::g_local! {
    /// The request a connection's G is serving, for its log lines.
    static REQUEST_ID: Cell<u64> = Cell::new(0);
}

/// What every connection's G shares (borrowed from `serve`'s stack: the
/// connection Gs are scoped).
struct Server {
    addr: SocketAddr,
    tokio: tokio::runtime::Handle,
    requests: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("--selftest") => selftest(),
        _ => listener_from(&args).and_then(serve),
    };
    if let Err(e) = r {
        eprintln!("httpd: {e}");
        std::process::exit(1);
    }
}

/// The listener: a descriptor handed in, or a new socket.
fn listener_from(args: &[String]) -> io::Result<TcpListener> {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let fd = match value("--listen-fd") {
        Some(v) => Some(
            v.parse::<i32>()
                .map_err(|_| bad("--listen-fd wants a number"))?,
        ),
        None if std::env::var("LISTEN_FDS").as_deref() == Ok("1") => Some(3),
        None => None,
    };
    match fd {
        Some(fd) => {
            // Check before taking ownership: a closed or non-socket
            // descriptor is a usage error, not undefined behaviour.
            let kind = socket_type(fd).ok_or_else(|| bad("the listen fd is not an open socket"))?;
            if kind != libc::SOCK_STREAM {
                return Err(bad("the listen fd is not a stream socket"));
            }
            // SAFETY: `fd` is an open socket this process was given to own
            // (checked above); nothing else in the program uses it.
            Ok(unsafe { TcpListener::from_raw_fd(fd) })
        }
        None => TcpListener::bind(value("--listen").map_or("127.0.0.1:8080", String::as_str)),
    }
}

/// `SO_TYPE` of `fd`, or `None` if it is not an open socket.
fn socket_type(fd: i32) -> Option<i32> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut v).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn serve(listener: TcpListener) -> io::Result<()> {
    let (sig_tx, sig_rx) = runtime::chan::bounded(4);
    signal::notify(&sig_tx, &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1])
        .map_err(io::Error::other)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = Server {
        addr: listener.local_addr()?,
        tokio: rt.handle().clone(),
        requests: AtomicU64::new(0),
    };
    println!("listening on {}", server.addr);
    let listener = &listener;
    let server = &server;
    runtime::scope(|s| {
        // Signals: a dump on SIGUSR1; on SIGINT/SIGTERM, a past accept
        // deadline ends the accept loop below.
        s.go(move || {
            for sig in sig_rx.iter() {
                if sig == Signal::SIGUSR1 {
                    let _ = runtime::dump(&mut io::stderr().lock());
                    continue;
                }
                println!("{sig}: shutting down");
                listener.set_deadline(Some(Instant::now()));
                return;
            }
        });
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    s.go(move || {
                        if let Err(e) = handle(server, conn) {
                            eprintln!("request {}: {e}", REQUEST_ID.with(Cell::get));
                        }
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    });
    signal::stop(&sig_tx);
    println!(
        "shutdown: clean, {} requests served",
        server.requests.load(Ordering::Relaxed)
    );
    Ok(())
}

/// One connection: requests until the client closes or its deadline.
fn handle(server: &Server, conn: TcpStream) -> io::Result<()> {
    conn.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        // Headers up to the blank line (bodies are not read: GET only).
        let mut close = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            close |= h.to_ascii_lowercase().starts_with("connection: close");
        }
        let id = server.requests.fetch_add(1, Ordering::Relaxed) + 1;
        REQUEST_ID.with(|r| r.set(id));
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let (status, body) = match path {
            "/" => ("200 OK", b"hello from gort\n".to_vec()),
            "/uname" => match runtime::process::Command::new("uname").arg("-sr").output() {
                Ok(o) if o.status.success() => ("200 OK", o.stdout),
                Ok(o) => ("500 Internal Server Error", o.stderr),
                Err(e) => ("500 Internal Server Error", e.to_string().into_bytes()),
            },
            "/fetch" => match fetch_self(server) {
                Ok(b) => ("200 OK", b),
                Err(e) => ("502 Bad Gateway", e.to_string().into_bytes()),
            },
            _ => ("404 Not Found", b"not found\n".to_vec()),
        };
        let mut w = &conn;
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )?;
        w.write_all(&body)?;
        if close {
            return Ok(());
        }
    }
}

/// `GET /` on this server through tokio's async `TcpStream`, on the tokio
/// runtime's threads; this G parks in `block_on` meanwhile.
fn fetch_self(server: &Server) -> io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.addr;
    let task = server.tokio.spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: gort\r\nConnection: close\r\n\r\n")
            .await?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await?;
        io::Result::Ok(resp)
    });
    let resp = runtime::block_on(task).map_err(io::Error::other)??;
    // The body of the inner response.
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no header end in the response"))?;
    Ok(resp[at + 4..].to_vec())
}

/// One request on a new connection: (status line, body).
fn get(addr: SocketAddr, path: &str) -> io::Result<(String, String)> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: gort\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    c.read_to_string(&mut resp)?;
    let status = resp.lines().next().unwrap_or("").to_owned();
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// Starts `httpd` as a child with a listener handed over as a descriptor,
/// and checks what a user would: the answers, a live dump on SIGUSR1, a
/// clean exit on SIGINT.
fn selftest() -> io::Result<()> {
    let t0 = Instant::now();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = std_listener.local_addr()?;
    let fd = std_listener.into_raw_fd();
    // The child inherits the descriptor: clear close-on-exec.
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut child = runtime::process::Command::new(std::env::current_exe()?)
        .args(["--listen-fd", &fd.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    // Ours is closed; the child has its copy.
    // SAFETY: we own `fd` and nothing else uses it.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr"))?;
    let (out_tx, out_rx) = runtime::chan::unbounded::<String>();
    runtime::go(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let err_text = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    let et = err_text.clone();
    runtime::go(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            et.lock().push_str(&line);
            line.clear();
        }
    });
    let first = out_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| io::Error::other("the server did not start"))?;
    check(
        first.starts_with("listening on"),
        &format!("first line: {first:?}"),
    )?;

    // Requests, several at once from Gs.
    let hs: Vec<_> = ["/", "/uname", "/fetch", "/nope"]
        .into_iter()
        .map(|p| runtime::go(move || (p, get(addr, p))))
        .collect();
    for h in hs {
        let (path, r) = h
            .join()
            .map_err(|_| io::Error::other("client G panicked"))?;
        let (status, body) = r?;
        println!("GET {path}: {status} {:?}", body.trim());
        match path {
            "/" => check(status.contains("200") && body == "hello from gort\n", path)?,
            "/uname" => check(status.contains("200") && body.starts_with("Linux"), path)?,
            "/fetch" => check(status.contains("200") && body == "hello from gort\n", path)?,
            _ => check(status.contains("404"), path)?,
        }
    }

    // A live dump on SIGUSR1: the server keeps running.
    child.signal(libc::SIGUSR1)?;
    let until = Instant::now() + Duration::from_secs(30);
    while !err_text.lock().contains("modules:") && Instant::now() < until {
        runtime::sleep(Duration::from_millis(10));
    }
    let dump = err_text.lock().clone();
    check(
        dump.contains("goroutine ") && dump.contains("modules:"),
        &format!("no live dump on stderr:\n{dump}"),
    )?;
    let (status, _) = get(addr, "/")?;
    check(status.contains("200"), "a request after the dump")?;
    println!("live dump: {} lines", dump.lines().count());

    // Ctrl-C: a clean shutdown.
    child.signal(libc::SIGINT)?;
    let st = child.wait()?;
    let rest: Vec<String> = out_rx.iter().collect();
    println!("server said: {rest:?}");
    check(st.success(), &format!("exit status {st}"))?;
    check(
        rest.iter()
            .any(|l| l.starts_with("interrupt: shutting down"))
            && rest.iter().any(|l| l.starts_with("shutdown: clean")),
        "no clean shutdown message",
    )?;
    println!("selftest: ok in {:?}", t0.elapsed());
    Ok(())
}

fn check(ok: bool, what: &str) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!("selftest failed: {what}")))
    }
}
