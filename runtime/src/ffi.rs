//! Foreign threads and C.
//!
//! Code running on a thread the runtime did not create (a C library's
//! callback thread) calls [`callback`]: the closure runs as a G, so it can
//! spawn, join, sleep and wait like any G. The thread gets an *extra M* from
//! a pool on its first call, keeps it, and returns it when it exits or
//! calls [`dropm`]. See `docs/foreign-threads.md`.
//!
//! Calls *out* of the runtime that may block (C functions, raw syscalls) go
//! through [`call`] (an alias of [`crate::syscall`]), so the G's P serves
//! other Gs meanwhile.
//!
//! C programs use the same machinery through the C ABI, a package of its
//! own (`gort-capi`: `libgort.so`, `libgort.a`, `gort.h`, `gort.pc`), built
//! on the functions of this module.

pub use scheduler::{CallbackError, DropmError, NeedmError};

/// Runs `f` as a G on the calling thread and returns its value. See the
/// module docs.
pub fn callback<R>(f: impl FnOnce() -> R) -> Result<R, CallbackError> {
    crate::ensure_started();
    scheduler::callback(f)
}

/// Binds an extra M to the calling foreign thread now (the first
/// [`callback`] does it otherwise).
pub fn needm() -> Result<(), NeedmError> {
    crate::ensure_started();
    scheduler::needm(false).map(|_| ())
}

/// Gives the calling foreign thread's extra M back to the pool now.
pub fn dropm() -> Result<(), DropmError> {
    scheduler::dropm()
}

/// Id of the M the calling thread is bound to, if any (diagnostics: a
/// foreign thread keeps the same M across callbacks).
pub fn thread_m_id() -> Option<usize> {
    scheduler::current_m().map(|m| m.id)
}

/// Calls a C function (or anything that may block in the kernel) with the
/// calling G's P set aside: alias of [`crate::syscall`].
#[inline]
pub fn call<R>(f: impl FnOnce() -> R) -> R {
    crate::syscall(f)
}
