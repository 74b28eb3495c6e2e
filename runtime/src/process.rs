//! Child processes that park Gs: Go's `os/exec`, in the shape of
//! `std::process`.
//!
//! [`Command`] builds a command as std's does (it wraps one). Starting it
//! runs in [`crate::syscall`] (fork and exec may take a while on a large
//! process); after that nothing blocks an M:
//!
//! - [`Child::wait`] parks the G on a pidfd (Linux 5.3+), which the kernel
//!   makes readable when the child exits; without pidfd (an older kernel,
//!   some emulators, `GORT_PIDFD=0`) it polls `waitpid(WNOHANG)` with
//!   sleeps that park the G, from 1 ms doubling to 50 ms.
//! - Piped stdin/stdout/stderr ([`ChildStdin`], [`ChildStdout`],
//!   [`ChildStderr`]) are registered with the netpoller: reads and writes
//!   park the G.
//! - [`Command::output`] and [`Child::wait_with_output`] read stdout and
//!   stderr at once (one of them in a helper G), so a child that fills one
//!   pipe while we read the other cannot deadlock.
//!
//! No zombie is left behind: a [`Child`] dropped before it was waited for
//! is reaped by a detached G when it exits (killed first with
//! [`Command::kill_on_drop`]).

use crate::net::PollFd;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

/// A process builder, as `std::process::Command`.
#[derive(Debug)]
pub struct Command {
    inner: std::process::Command,
    kill_on_drop: bool,
}

impl From<std::process::Command> for Command {
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            kill_on_drop: false,
        }
    }
}

impl Command {
    /// A command to run `program` (looked up in `PATH` if it has no `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin (`Stdio::piped()` gives a [`ChildStdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self
    }

    /// The child's stdout (`Stdio::piped()` gives a [`ChildStdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self
    }

    /// The child's stderr (`Stdio::piped()` gives a [`ChildStderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self
    }

    /// Kill the child (SIGKILL) if its [`Child`] is dropped before it was
    /// waited for (tokio's option of the same name). Off by default: a
    /// dropped child runs on, and is reaped when it exits.
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Command {
        self.kill_on_drop = on;
        self
    }

    /// The std command inside, for options this type does not forward
    /// (`std::os::unix::process::CommandExt`: `uid`, `process_group`, ...).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child.
    pub fn spawn(&mut self) -> io::Result<Child> {
        crate::ensure_started();
        let mut child = crate::syscall(|| self.inner.spawn())?;
        let pidfd = scheduler::process::pidfd_open(child.id())
            .ok()
            .and_then(|fd| PollFd::new(fd).ok());
        let pipes = (|| {
            Ok::<_, io::Error>((
                child.stdin.take().map(ChildStdin::new).transpose()?,
                child.stdout.take().map(ChildStdout::new).transpose()?,
                child.stderr.take().map(ChildStderr::new).transpose()?,
            ))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(p) => p,
            Err(e) => {
                // Could not register a pipe: do not leave the child behind.
                let _ = child.kill();
                let _ = crate::syscall(|| child.wait());
                return Err(e);
            }
        };
        Ok(Child {
            inner: Some(child),
            pidfd,
            status: None,
            kill_on_drop: self.kill_on_drop,
            stdin,
            stdout,
            stderr,
        })
    }

    /// Runs the child to completion and returns its exit status (stdio
    /// inherited unless set).
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Runs the child with stdout and stderr captured (stdin empty unless
    /// set), and returns them with the exit status.
    pub fn output(&mut self) -> io::Result<Output> {
        self.inner.stdin(Stdio::null());
        self.inner.stdout(Stdio::piped());
        self.inner.stderr(Stdio::piped());
        self.spawn()?.wait_with_output()
    }
}

/// A running (or finished) child process.
#[derive(Debug)]
pub struct Child {
    /// `None` once handed to the reaper in `drop`.
    inner: Option<std::process::Child>,
    /// Readable when the child exits; `None` without pidfd support.
    pidfd: Option<PollFd<OwnedFd>>,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The child's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    fn std(&mut self) -> &mut std::process::Child {
        match self.inner.as_mut() {
            Some(c) => c,
            None => unreachable!("Child: used after drop"),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.as_ref().map_or(0, std::process::Child::id)
    }

    /// Sends SIGKILL (nothing if it was already waited for, as std).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.std().kill()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the child, unless it was
    /// already waited for. Fails with `InvalidInput` for a signal number
    /// out of range.
    pub fn signal(&mut self, signal: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let pid = self.id();
        scheduler::process::kill(pid, signal)
    }

    /// The exit status if the child has exited (reaps it), without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self.std().try_wait()?;
        self.status = s;
        Ok(s)
    }

    /// Waits for the child to exit and returns its status, parking the G
    /// (see the module docs). Closes the child's stdin first, as std, so a
    /// child reading it sees end of file.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let mut nap = Duration::from_millis(1);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            match &self.pidfd {
                Some(fd) => fd.readable(None)?,
                None => {
                    crate::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(50));
                }
            }
        }
    }

    /// Waits for the child, reading all of its piped stdout and stderr.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let err = self.stderr.take().map(|mut e| {
            crate::go(move || {
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).map(|_| buf)
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take() {
            o.read_to_end(&mut stdout)?;
        }
        let stderr = match err {
            Some(h) => match h.join() {
                Ok(r) => r?,
                Err(p) => std::panic::resume_unwind(p),
            },
            None => Vec::new(),
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some(mut child) = self.inner.take() else {
            return;
        };
        if self.kill_on_drop {
            let _ = child.kill();
        }
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Still running: a detached G reaps it when it exits (no zombie).
        let pidfd = self.pidfd.take();
        let reaper = move || {
            let mut nap = Duration::from_millis(1);
            loop {
                match child.try_wait() {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => return,
                }
                match &pidfd {
                    Some(fd) => {
                        if fd.readable(None).is_err() {
                            crate::sleep(nap);
                        }
                    }
                    None => crate::sleep(nap),
                }
                nap = (nap * 2).min(Duration::from_millis(50));
            }
        };
        if crate::try_go(reaper).is_err() {
            // No G can be made (memory exhausted): the child stays a
            // zombie until this process exits, as with std.
        }
    }
}

/// Pipe ends, registered with the netpoller, as `std::process`'s.
macro_rules! child_pipe {
    ($name:ident, $std:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name {
            // A `File` for its `Read`/`Write` on `&File`.
            fd: PollFd<std::fs::File>,
        }

        impl $name {
            fn new(p: $std) -> io::Result<$name> {
                let file = std::fs::File::from(OwnedFd::from(p));
                Ok($name {
                    fd: PollFd::new(file)?,
                })
            }

            /// The std pipe end, deregistered (still non-blocking).
            pub fn into_inner(self) -> $std {
                <$std>::from(OwnedFd::from(self.fd.into_inner()))
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                OwnedFd::from(p.into_inner())
            }
        }
    };
}

child_pipe!(
    ChildStdin,
    std::process::ChildStdin,
    "The child's stdin: writes park the G while the pipe is full."
);
child_pipe!(
    ChildStdout,
    std::process::ChildStdout,
    "The child's stdout: reads park the G until output arrives."
);
child_pipe!(
    ChildStderr,
    std::process::ChildStderr,
    "The child's stderr: reads park the G until output arrives."
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write_with(None, |mut f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(None, |mut f| f.read(buf))
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read_with(None, |mut f| f.read(buf))
    }
}
