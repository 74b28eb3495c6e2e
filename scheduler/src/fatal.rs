//! Fatal runtime errors: Go's `throw`.
//!
//! A broken invariant or an exhausted resource the runtime cannot report to a
//! caller (no thread can be created, the M limit is reached) ends the process:
//! `fatal error: <function>: <reason>` on stderr, then `abort`. The message is
//! written with `write(2)` from a fixed buffer so that this path allocates
//! nothing and takes no lock; the crash-tracing layer can add a dump through
//! [`set_fatal_hook`].

use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

static FATAL_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Set once a crash dump has begun (the crash-tracing layer sets it as its
/// handler starts): from then on sysmon leaves the `syscall` labels of Gs
/// alone, so a thread woken by the dump's signal is still shown asleep in
/// the kernel, where the signal found it.
static DUMPING: AtomicBool = AtomicBool::new(false);

/// Notes that a crash dump has begun. Async-signal-safe (one store).
pub fn note_dumping() {
    DUMPING.store(true, Ordering::Release);
}

/// Whether a crash dump has begun.
pub fn dumping() -> bool {
    DUMPING.load(Ordering::Acquire)
}

/// Installs a function that runs after the `fatal error:` line and before
/// the abort (the signals crate prints the goroutine dump there).
pub fn set_fatal_hook(hook: fn(&str)) {
    FATAL_HOOK.store(hook as *mut (), Ordering::Release);
}

/// Writes `parts` to stderr without allocating.
pub fn write_stderr(parts: &[&[u8]]) {
    for part in parts {
        let mut buf = *part;
        while !buf.is_empty() {
            // SAFETY: buf is a valid readable slice for the length given.
            let n = unsafe { libc::write(2, buf.as_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            buf = &buf[n as usize..];
        }
    }
}

/// Prints `fatal error: msg` and aborts the process.
#[cold]
#[inline(never)]
pub fn throw(msg: &str) -> ! {
    write_stderr(&[b"fatal error: ", msg.as_bytes(), b"\n"]);
    let hook = FATAL_HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: only `set_fatal_hook` stores here, always a `fn(&str)`.
        let hook: fn(&str) = unsafe { core::mem::transmute::<*mut (), fn(&str)>(hook) };
        hook(msg);
    }
    std::process::abort()
}

/// `throw!("function: reason")`: stops the process on a broken invariant.
#[macro_export]
macro_rules! throw {
    ($msg:literal) => {
        $crate::fatal::throw($msg)
    };
}
