//! `fork(2)` and the runtime: fork then exec.
//!
//! A forked child has one thread, the one that called `fork`. The runtime's
//! other Ms, sysmon and the netpoller did not come along; a lock one of them
//! held at the fork (a run queue's, the stack pool's, a channel's) stays
//! held in the child for ever, and Gs parked in the parent wait there for
//! threads that do not exist. As in Go, a child may `exec` (or `_exit`),
//! and nothing else in the runtime. A `pthread_atfork` child handler marks
//! the process, and what cannot work in the child is refused at once
//! instead of hanging:
//!
//! | in the child | result |
//! |---|---|
//! | spawning a G (`go`, `try_go`, `gort_go`) | `SpawnError::ForkedChild` |
//! | a callback (`ffi::callback`, `gort_callback`) | `CallbackError::ForkedChild` |
//! | `yield_now` on a G | returns at once: no other G can run |
//! | `syscall(f)` | runs `f` (there is no P to set aside) |
//! | a G that parks (sleep, join, channel, lock, socket), readies another G, or returns | `fatal error: fork: …` on stderr, exit status 2 |
//!
//! Plain code between `fork` and `exec`/`_exit` (no runtime call) is fine,
//! which is what `std::process::Command` and `posix_spawn` do.
//!
//! Rejected: a prepare handler that takes every runtime lock and a child
//! handler that starts a fresh runtime. The parent's locks are many and
//! some are taken in signal handlers; and the child would inherit Gs, timers
//! and an epoll descriptor it shares with the parent, none of which a fresh
//! runtime could honour. Go does not support this either.

use core::sync::atomic::{AtomicBool, Ordering};

/// Set in a child of `fork` by the `pthread_atfork` child handler.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Runs in the child right after `fork`: async-signal-safe (one store).
extern "C" fn child() {
    IN_CHILD.store(true, Ordering::Relaxed);
}

/// Registers the child handler (once, at runtime start).
pub(crate) fn register() {
    // SAFETY: `child` has the signature pthread_atfork expects and is
    // async-signal-safe.
    unsafe { libc::pthread_atfork(None, None, Some(child)) };
}

/// Whether this process is a forked child of a process that ran gort.
#[inline]
pub fn in_forked_child() -> bool {
    IN_CHILD.load(Ordering::Relaxed)
}

/// A G in a forked child is about to wait for something only the parent's
/// threads could deliver, or to take a scheduler lock one of them may have
/// held at the fork: says so and exits with status 2 (a Go fatal error's
/// status).
#[cold]
pub(crate) fn refuse_park() -> ! {
    crate::fatal::write_stderr(&[
        b"fatal error: fork: the runtime cannot schedule Gs in a forked child \
          (its threads stayed in the parent); call exec or _exit after fork\n",
    ]);
    // SAFETY: _exit ends the process; nothing of ours runs after it.
    unsafe { libc::_exit(2) }
}
