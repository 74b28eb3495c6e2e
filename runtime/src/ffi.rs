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
//! The C ABI (`include/gort.h`) is at the bottom: `gort_callback`,
//! `gort_needm`, `gort_dropm`, `gort_go`, `gort_sleep_ns`, `gort_yield`,
//! `gort_strerror`. Misuse gets a status code, never undefined behaviour.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

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

/// Status codes of the C ABI (`gort.h`).
pub mod status {
    use std::ffi::c_int;
    /// Success.
    pub const OK: c_int = 0;
    /// The function pointer was null.
    pub const NULL_FN: c_int = -1;
    /// `gort_dropm` on a thread without an M.
    pub const NO_M: c_int = -2;
    /// `gort_dropm` on a runtime thread.
    pub const NOT_FOREIGN: c_int = -3;
    /// `gort_dropm` inside a callback.
    pub const IN_CALLBACK: c_int = -4;
    /// The process is exiting.
    pub const EXITING: c_int = -5;
    /// No memory for an extra M.
    pub const NO_MEMORY: c_int = -6;
    /// `gort_needm` on a thread that has an M.
    pub const ALREADY_BOUND: c_int = -7;
    /// Called from the scheduler's own context.
    pub const BAD_CONTEXT: c_int = -8;
}

fn callback_status(e: &CallbackError) -> c_int {
    match e {
        CallbackError::Needm(n) => needm_status(*n),
        CallbackError::Exiting => status::EXITING,
        CallbackError::OnSchedulerStack => status::BAD_CONTEXT,
        // A C callback cannot unwind into Rust; Rust closures are caught in
        // `callback` and never reach the C ABI.
        _ => status::BAD_CONTEXT,
    }
}

fn needm_status(e: NeedmError) -> c_int {
    match e {
        NeedmError::AlreadyBound => status::ALREADY_BOUND,
        NeedmError::NoSpareInSignal | NeedmError::OutOfMemory => status::NO_MEMORY,
    }
}

/// A C function pointer and its argument, sendable to a G.
struct CFn(unsafe extern "C" fn(*mut c_void), *mut c_void);
// SAFETY: the C caller hands the pointer over to the runtime by calling
// gort_go/gort_callback; by the documented contract it is valid on any
// thread.
unsafe impl Send for CFn {}

impl CFn {
    fn call(self) {
        // SAFETY: the C caller promises fn(arg) is a valid call.
        unsafe { (self.0)(self.1) }
    }
}

/// `int gort_callback(void (*fn)(void *), void *arg)`.
///
/// # Safety
///
/// `f`, if not null, must be a C function that may be called with `arg` on
/// the calling thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gort_callback(
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> c_int {
    let Some(f) = f else { return status::NULL_FN };
    let cfn = CFn(f, arg);
    match callback(move || cfn.call()) {
        Ok(()) => status::OK,
        Err(e) => callback_status(&e),
    }
}

/// `int gort_needm(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn gort_needm() -> c_int {
    if scheduler::callback::exiting() {
        return status::EXITING;
    }
    scheduler::sched::sched();
    match needm() {
        Ok(()) => status::OK,
        Err(e) => needm_status(e),
    }
}

/// `int gort_dropm(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn gort_dropm() -> c_int {
    match dropm() {
        Ok(()) => status::OK,
        Err(DropmError::NoM) => status::NO_M,
        Err(DropmError::NotExtra) => status::NOT_FOREIGN,
        Err(DropmError::InCallback) => status::IN_CALLBACK,
    }
}

/// `void gort_sleep_ns(uint64_t ns)`.
#[unsafe(no_mangle)]
pub extern "C" fn gort_sleep_ns(ns: u64) {
    crate::sleep(Duration::from_nanos(ns));
}

/// `void gort_yield(void)`.
#[unsafe(no_mangle)]
pub extern "C" fn gort_yield() {
    crate::yield_now();
}

/// `int64_t gort_go(void (*fn)(void *), void *arg)`.
///
/// # Safety
///
/// `f`, if not null, must be a C function that may be called with `arg` on
/// any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gort_go(
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> i64 {
    let Some(f) = f else {
        return i64::from(status::NULL_FN);
    };
    if scheduler::callback::exiting() {
        return i64::from(status::EXITING);
    }
    let cfn = CFn(f, arg);
    match crate::try_go(move || cfn.call()) {
        Ok(h) => h.id() as i64,
        Err(_) => i64::from(status::NO_MEMORY),
    }
}

/// `const char *gort_strerror(int status)`.
#[unsafe(no_mangle)]
pub extern "C" fn gort_strerror(code: c_int) -> *const c_char {
    let s: &'static [u8] = match code {
        status::OK => b"ok\0",
        status::NULL_FN => b"null function pointer\0",
        status::NO_M => b"this thread has no M\0",
        status::NOT_FOREIGN => b"this is a runtime thread, not a foreign one\0",
        status::IN_CALLBACK => b"not allowed inside a callback\0",
        status::EXITING => b"the process is exiting\0",
        status::NO_MEMORY => b"out of memory for an extra M\0",
        status::ALREADY_BOUND => b"this thread already has an M\0",
        status::BAD_CONTEXT => b"called from the scheduler's own context\0",
        _ => b"unknown gort status\0",
    };
    s.as_ptr().cast()
}
