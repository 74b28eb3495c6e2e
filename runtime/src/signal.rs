//! OS signals on channels: Go's `os/signal`.
//!
//! [`notify`] makes the given signals arrive on a channel instead of
//! taking their default action (SIGINT no longer kills the program, it
//! sends [`Signal::SIGINT`]). Delivery is Go's: the signal handler only
//! records the signal; a delivery thread then `try_send`s it to every
//! channel registered for it, and drops it for a channel that is full (so
//! give the channel a buffer of at least 1). [`stop`] unregisters a
//! channel, and a signal no channel wants any more gets its previous
//! action back; [`reset`] does that for given signals at once.
//!
//! ```no_run
//! use runtime::signal::{self, Signal};
//! let (tx, rx) = runtime::chan::bounded(1);
//! signal::notify(&tx, &[Signal::SIGINT, Signal::SIGTERM]).unwrap();
//! // ... start the Gs that do the work ...
//! let sig = rx.recv().unwrap();
//! eprintln!("{sig}: shutting down");
//! ```
//!
//! Crash tracing keeps its signals: faults, SIGABRT and SIGQUIT (the
//! all-Gs dump) are refused with [`SignalError`], as are SIGKILL and
//! SIGSTOP. A program that waits for a signal with every G parked is not
//! reported as deadlocked (the signal may still come).

use crate::chan::Sender;
use scheduler::lock_rank::{Rank, RankedMutex};
use std::fmt;

pub use signals::notify::NotifyError as SignalError;

/// An OS signal number, printed as Go prints its `os.Signal`
/// (`interrupt`, `terminated`, `hangup`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// Interrupt (Ctrl-C).
    pub const SIGINT: Signal = Signal(libc::SIGINT);
    /// Termination request (`kill`, systemd stop, container stop).
    pub const SIGTERM: Signal = Signal(libc::SIGTERM);
    /// Hang-up (the terminal went away; daemons: reload configuration).
    pub const SIGHUP: Signal = Signal(libc::SIGHUP);
    /// User-defined signal 1.
    pub const SIGUSR1: Signal = Signal(libc::SIGUSR1);
    /// User-defined signal 2.
    pub const SIGUSR2: Signal = Signal(libc::SIGUSR2);
    /// Window size change.
    pub const SIGWINCH: Signal = Signal(libc::SIGWINCH);
    /// Write to a pipe with no reader (Rust programs ignore it by default).
    pub const SIGPIPE: Signal = Signal(libc::SIGPIPE);
    /// Alarm clock.
    pub const SIGALRM: Signal = Signal(libc::SIGALRM);
    /// A child stopped or exited.
    pub const SIGCHLD: Signal = Signal(libc::SIGCHLD);

    /// The signal with number `n` (any number; [`notify`] checks it).
    pub const fn from_raw(n: i32) -> Signal {
        Signal(n)
    }

    /// The signal number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::SIGINT => "interrupt",
            libc::SIGTERM => "terminated",
            libc::SIGHUP => "hangup",
            libc::SIGUSR1 => "user defined signal 1",
            libc::SIGUSR2 => "user defined signal 2",
            libc::SIGWINCH => "window changed",
            libc::SIGPIPE => "broken pipe",
            libc::SIGALRM => "alarm clock",
            libc::SIGCHLD => "child exited",
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}

/// Channels and the signals each wants.
static SUBS: RankedMutex<Vec<(Sender<Signal>, Vec<i32>)>> =
    RankedMutex::new(Rank::SignalSubs, Vec::new());

/// Makes every signal in `sigs` arrive on `tx` instead of taking its
/// default action, from now until [`stop`] (calls add up: a channel can be
/// registered for more signals later, several channels for one signal).
/// Nothing changes if any signal is refused.
pub fn notify(tx: &Sender<Signal>, sigs: &[Signal]) -> Result<(), SignalError> {
    crate::ensure_started();
    start_delivery()?;
    // Check all first, so that a refusal changes nothing.
    for s in sigs {
        if let Err(e) = signals::notify::enable(s.0) {
            // Roll back the ones this call enabled that no one else wants.
            let subs = SUBS.lock();
            for t in sigs.iter().take_while(|t| *t != s) {
                if !subs.iter().any(|(_, w)| w.contains(&t.0)) {
                    signals::notify::disable(t.0);
                }
            }
            return Err(e);
        }
    }
    let mut subs = SUBS.lock();
    let entry = match subs.iter_mut().position(|(t, _)| t.same_channel(tx)) {
        Some(i) => &mut subs[i].1,
        None => {
            subs.push((tx.clone(), Vec::new()));
            &mut subs.last_mut().expect("just pushed").1
        }
    };
    for s in sigs {
        if !entry.contains(&s.0) {
            entry.push(s.0);
        }
    }
    Ok(())
}

/// Stops delivering to `tx` (Go's `signal.Stop`). A signal that no channel
/// wants any more gets back the action it had before [`notify`].
pub fn stop(tx: &Sender<Signal>) {
    let mut subs = SUBS.lock();
    let Some(i) = subs.iter().position(|(t, _)| t.same_channel(tx)) else {
        return;
    };
    let (_, sigs) = subs.swap_remove(i);
    for s in sigs {
        if !subs.iter().any(|(_, w)| w.contains(&s)) {
            signals::notify::disable(s);
        }
    }
}

/// Undoes [`notify`] for `sigs` on every channel (Go's `signal.Reset`):
/// they take their previous action again.
pub fn reset(sigs: &[Signal]) {
    let mut subs = SUBS.lock();
    for (_, w) in subs.iter_mut() {
        w.retain(|s| !sigs.iter().any(|t| t.0 == *s));
    }
    subs.retain(|(_, w)| !w.is_empty());
    for s in sigs {
        signals::notify::disable(s.0);
    }
}

/// The delivery thread (one, started by the first [`notify`]): takes the
/// signals the handler recorded and offers each to the channels that want
/// it, dropping it for a channel that is full (Go's rule). An error if the
/// thread cannot be made (the next `notify` tries again).
fn start_delivery() -> Result<(), SignalError> {
    static STARTED: RankedMutex<bool> = RankedMutex::new(Rank::SignalStart, false);
    let mut started = STARTED.lock();
    if *started {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("gort-signal".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            loop {
                for sig in signals::notify::wait_pending() {
                    let subs = SUBS.lock();
                    for (tx, want) in subs.iter() {
                        if want.contains(&sig) {
                            let _ = tx.try_send(Signal(sig));
                        }
                    }
                }
            }
        })
        .map_err(SignalError::Os)?;
    *started = true;
    Ok(())
}
