//! gort's C ABI: `libgort.a`, `libgort.so` and `include/gort.h`.
//!
//! C programs start Gs ([`gort_go`], [`gort_spawn`] + [`gort_join`]), call
//! back into the runtime from threads of their own ([`gort_callback`],
//! [`gort_needm`], [`gort_dropm`]), and inside a G sleep, yield, or make a
//! blocking call that lets other Gs run ([`gort_sleep_ns`], [`gort_yield`],
//! [`gort_syscall`]). Each function is a thin shim over the Rust API of the
//! `gort` crate (imported as `runtime`): `runtime::ffi::callback`,
//! `runtime::try_go`, `runtime::syscall`, ...
//!
//! Misuse gets a status code, never undefined behaviour: every code is in
//! [`status::ALL`], from which `gort_strerror`'s text comes and against
//! which the header's constants are checked (`tests/tests/ffi_header.rs`).
//!
//! Signal handlers: a handler that interrupted a G must not park that G or
//! run another on its stack. Functions that would (callback, sleep, yield,
//! join, syscall) return [`status::SIGNAL_HANDLER`] there; spawning returns
//! it from any handler, since it allocates and takes the scheduler's locks,
//! which the interrupted code may hold. A handler is recognised by running on
//! the thread's alternate signal stack (`SA_ONSTACK`, which gort requires of
//! handlers on its threads). A handler on a plain thread may still call
//! `gort_callback`: the callback runs as a G of its own.
//!
//! Build and install: `capi/install.sh` (see the package's README).
#![allow(unsafe_code)]

use scheduler::lock_rank::{Rank, RankedGuard, RankedMutex};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use runtime::ffi::{CallbackError, DropmError, NeedmError};

/// Status codes of the C ABI (`gort.h`'s `GORT_OK`, `GORT_E_*`).
pub mod status {
    use std::ffi::c_int;

    /// Success.
    pub const OK: c_int = 0;
    /// A function pointer was null.
    pub const NULL_FN: c_int = -1;
    /// `gort_dropm` on a thread without an M.
    pub const NO_M: c_int = -2;
    /// `gort_dropm` on a runtime thread.
    pub const NOT_FOREIGN: c_int = -3;
    /// `gort_dropm` inside a callback.
    pub const IN_CALLBACK: c_int = -4;
    /// The process is exiting.
    pub const EXITING: c_int = -5;
    /// No memory (or no stack within the configured limits) for a G or an
    /// extra M.
    pub const NO_MEMORY: c_int = -6;
    /// `gort_needm` on a thread that has an M.
    pub const ALREADY_BOUND: c_int = -7;
    /// Called from the scheduler's own context.
    pub const BAD_CONTEXT: c_int = -8;
    /// Called from a signal handler where that is not allowed.
    pub const SIGNAL_HANDLER: c_int = -9;
    /// Not a handle `gort_spawn` returned.
    pub const BAD_HANDLE: c_int = -10;
    /// The handle was joined already.
    pub const JOINED: c_int = -11;
    /// A G tried to join itself.
    pub const JOIN_SELF: c_int = -12;
    /// Called in a child of `fork`, where the runtime's threads do not
    /// exist: exec or `_exit` after fork.
    pub const FORKED_CHILD: c_int = -13;
    /// `gort_dump`: the descriptor is not open for writing.
    pub const BAD_FD: c_int = -14;

    /// Every status: value, name in `gort.h`, `gort_strerror`'s text
    /// (NUL-terminated).
    pub const ALL: &[(c_int, &str, &str)] = &[
        (OK, "GORT_OK", "ok\0"),
        (NULL_FN, "GORT_E_NULL_FN", "null function pointer\0"),
        (NO_M, "GORT_E_NO_M", "this thread has no M\0"),
        (
            NOT_FOREIGN,
            "GORT_E_NOT_FOREIGN",
            "this is a runtime thread, not a foreign one\0",
        ),
        (
            IN_CALLBACK,
            "GORT_E_IN_CALLBACK",
            "not allowed inside a callback\0",
        ),
        (EXITING, "GORT_E_EXITING", "the process is exiting\0"),
        (
            NO_MEMORY,
            "GORT_E_NO_MEMORY",
            "no memory or stack for a G or an extra M (see GORT_MAX_THREADS, vm.max_map_count)\0",
        ),
        (
            ALREADY_BOUND,
            "GORT_E_ALREADY_BOUND",
            "this thread already has an M\0",
        ),
        (
            BAD_CONTEXT,
            "GORT_E_BAD_CONTEXT",
            "called from the scheduler's own context\0",
        ),
        (
            SIGNAL_HANDLER,
            "GORT_E_SIGNAL_HANDLER",
            "not allowed in a signal handler that interrupted a G\0",
        ),
        (
            BAD_HANDLE,
            "GORT_E_BAD_HANDLE",
            "not a handle returned by gort_spawn\0",
        ),
        (JOINED, "GORT_E_JOINED", "this G was joined already\0"),
        (JOIN_SELF, "GORT_E_JOIN_SELF", "a G cannot join itself\0"),
        (
            FORKED_CHILD,
            "GORT_E_FORKED_CHILD",
            "refused in a forked child: call exec or _exit after fork\0",
        ),
        (
            BAD_FD,
            "GORT_E_BAD_FD",
            "the file descriptor is not open for writing\0",
        ),
    ];
}

fn callback_status(e: &CallbackError) -> c_int {
    match e {
        CallbackError::Needm(n) => needm_status(*n),
        CallbackError::Exiting => status::EXITING,
        CallbackError::InSignalHandler => status::SIGNAL_HANDLER,
        CallbackError::ForkedChild => status::FORKED_CHILD,
        // A C callback cannot unwind (the `extern "C"` boundary aborts), so
        // `Panicked` never reaches the C ABI; the rest are the scheduler's
        // own context.
        _ => status::BAD_CONTEXT,
    }
}

fn needm_status(e: NeedmError) -> c_int {
    match e {
        NeedmError::AlreadyBound => status::ALREADY_BOUND,
        NeedmError::NoSpareInSignal | NeedmError::OutOfMemory => status::NO_MEMORY,
    }
}

/// Whether a signal handler interrupted the G this thread runs: parking or
/// switching now would corrupt that G.
fn in_handler_on_g() -> bool {
    scheduler::current_g().is_some() && scheduler::callback::on_signal_stack()
}

/// A C function pointer and its argument, sendable to a G.
struct CFn<F>(F, *mut c_void);
// SAFETY: the C caller hands the pointer over to the runtime by calling
// gort_go/gort_spawn/gort_callback; by the documented contract it is valid
// on any thread.
unsafe impl<F> Send for CFn<F> {}

impl CFn<unsafe extern "C" fn(*mut c_void)> {
    fn call(self) {
        // SAFETY: the C caller promises fn(arg) is a valid call.
        unsafe { (self.0)(self.1) }
    }
}

impl CFn<unsafe extern "C" fn(*mut c_void) -> c_int> {
    fn call(self) -> c_int {
        // SAFETY: the C caller promises fn(arg) is a valid call.
        unsafe { (self.0)(self.1) }
    }
}

/// `int gort_callback(void (*fn)(void *), void *arg)`: runs `fn(arg)` as a
/// G on the calling thread and returns when it has returned.
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
    match runtime::ffi::callback(move || cfn.call()) {
        Ok(()) => status::OK,
        Err(e) => callback_status(&e),
    }
}

/// `int gort_needm(void)`: binds an extra M to the calling thread now.
#[unsafe(no_mangle)]
pub extern "C" fn gort_needm() -> c_int {
    if scheduler::callback::exiting() {
        return status::EXITING;
    }
    scheduler::state::sched();
    match runtime::ffi::needm() {
        Ok(()) => status::OK,
        Err(e) => needm_status(e),
    }
}

/// `int gort_dropm(void)`: gives the calling thread's extra M back now.
#[unsafe(no_mangle)]
pub extern "C" fn gort_dropm() -> c_int {
    match runtime::ffi::dropm() {
        Ok(()) => status::OK,
        Err(DropmError::NoM) => status::NO_M,
        Err(DropmError::NotExtra) => status::NOT_FOREIGN,
        Err(DropmError::InCallback) => status::IN_CALLBACK,
    }
}

/// `int gort_sleep_ns(uint64_t ns)`: parks the calling G (sleeps a plain
/// thread) for at least `ns` nanoseconds.
#[unsafe(no_mangle)]
pub extern "C" fn gort_sleep_ns(ns: u64) -> c_int {
    if in_handler_on_g() {
        return status::SIGNAL_HANDLER;
    }
    runtime::sleep(Duration::from_nanos(ns));
    status::OK
}

/// `int gort_dump(int fd)`: writes every G's stack to `fd` in the crash
/// dump's format while the program runs (`runtime::dump_fd`). Not from a
/// signal handler (it takes a lock and waits for other threads): a C
/// program dumps on a signal from a thread that waits for it (`sigwait`,
/// `signalfd`).
#[unsafe(no_mangle)]
pub extern "C" fn gort_dump(fd: c_int) -> c_int {
    if scheduler::callback::on_signal_stack() {
        return status::SIGNAL_HANDLER;
    }
    // SAFETY: F_GETFL on any integer: an error for a closed descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFL) } < 0 {
        return status::BAD_FD;
    }
    // SAFETY: the descriptor is open (checked above) and the caller keeps
    // it open for the call, the C contract of any function taking an fd.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    match runtime::dump_fd(fd) {
        Ok(_) => status::OK,
        Err(_) => status::BAD_FD,
    }
}

/// `int gort_yield(void)`: lets other Gs run.
#[unsafe(no_mangle)]
pub extern "C" fn gort_yield() -> c_int {
    if in_handler_on_g() {
        return status::SIGNAL_HANDLER;
    }
    runtime::yield_now();
    status::OK
}

/// `int gort_syscall(void (*fn)(void *), void *arg)`: calls `fn(arg)` with
/// the calling G's P set aside, so other Gs run while it blocks
/// (`runtime::syscall`). On a plain thread it just calls `fn`.
///
/// # Safety
///
/// `f`, if not null, must be a C function that may be called with `arg` on
/// the calling thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gort_syscall(
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> c_int {
    let Some(f) = f else { return status::NULL_FN };
    if in_handler_on_g() {
        return status::SIGNAL_HANDLER;
    }
    let cfn = CFn(f, arg);
    runtime::syscall(move || cfn.call());
    status::OK
}

/// The refusals shared by the two ways of starting a G.
fn spawn_refusal() -> Option<c_int> {
    if scheduler::callback::on_signal_stack() {
        Some(status::SIGNAL_HANDLER)
    } else if scheduler::callback::exiting() {
        Some(status::EXITING)
    } else {
        None
    }
}

fn spawn_status(e: &runtime::SpawnError) -> c_int {
    match e {
        runtime::SpawnError::ForkedChild => status::FORKED_CHILD,
        _ => status::NO_MEMORY,
    }
}

/// `int64_t gort_go(void (*fn)(void *), void *arg)`: starts a G running
/// `fn(arg)` that nobody joins; returns its id (> 0) or a negative status.
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
    if let Some(st) = spawn_refusal() {
        return i64::from(st);
    }
    let cfn = CFn(f, arg);
    match runtime::try_go(move || cfn.call()) {
        Ok(h) => h.id() as i64,
        Err(e) => i64::from(spawn_status(&e)),
    }
}

/// The joinable Gs started from C, by handle.
struct Spawned {
    /// Handles given out so far: a handle in `1..=issued` that is not in
    /// `live` was joined already.
    issued: i64,
    live: HashMap<i64, runtime::JoinHandle<c_int>>,
}

static SPAWNED: RankedMutex<Option<Spawned>> = RankedMutex::new(Rank::CapiSpawned, None);

fn spawned() -> RankedGuard<'static, Option<Spawned>> {
    SPAWNED.lock()
}

/// `int64_t gort_spawn(int (*fn)(void *), void *arg)`: starts a G running
/// `fn(arg)`; returns a handle (> 0) that [`gort_join`] takes exactly once,
/// or a negative status.
///
/// # Safety
///
/// `f`, if not null, must be a C function that may be called with `arg` on
/// any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gort_spawn(
    f: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    arg: *mut c_void,
) -> i64 {
    let Some(f) = f else {
        return i64::from(status::NULL_FN);
    };
    if let Some(st) = spawn_refusal() {
        return i64::from(st);
    }
    let cfn = CFn(f, arg);
    let h = match runtime::try_go(move || cfn.call()) {
        Ok(h) => h,
        Err(e) => return i64::from(spawn_status(&e)),
    };
    let mut table = spawned();
    let t = table.get_or_insert_with(|| Spawned {
        issued: 0,
        live: HashMap::new(),
    });
    t.issued += 1;
    t.live.insert(t.issued, h);
    t.issued
}

/// `int gort_join(int64_t g, int *result)`: waits for the G of a
/// [`gort_spawn`] handle and stores its function's return value in
/// `*result` (when not null). Parks a calling G; blocks a plain thread.
///
/// # Safety
///
/// `result`, if not null, must be valid for writing an `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gort_join(g: i64, result: *mut c_int) -> c_int {
    if in_handler_on_g() {
        return status::SIGNAL_HANDLER;
    }
    let h = {
        let mut table = spawned();
        let Some(t) = table.as_mut() else {
            return status::BAD_HANDLE;
        };
        if g <= 0 || g > t.issued {
            return status::BAD_HANDLE;
        }
        let me = scheduler::current_g().map(|c| c.goid());
        match t.live.get(&g) {
            None => return status::JOINED,
            Some(h) if Some(h.id()) == me => return status::JOIN_SELF,
            Some(_) => {}
        }
        match t.live.remove(&g) {
            Some(h) => h,
            None => return status::JOINED,
        }
    };
    let v = match h.join() {
        Ok(v) => v,
        // `join` fails only for a panic, and the G runs a C function, which
        // cannot unwind into it: a panic at the `extern "C"` boundary
        // aborts the process before the G ends.
        Err(_) => unreachable!("gort_join: a G running a C function panicked"),
    };
    if !result.is_null() {
        // SAFETY: the caller promises `result` is writable.
        unsafe { result.write(v) };
    }
    status::OK
}

/// `const char *gort_strerror(int status)`: a static description.
#[unsafe(no_mangle)]
pub extern "C" fn gort_strerror(code: c_int) -> *const c_char {
    status::ALL
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("unknown gort status\0", |(_, _, text)| text)
        .as_ptr()
        .cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_unique_value_name_and_text() {
        let mut seen = std::collections::HashSet::new();
        for (code, name, text) in status::ALL {
            assert!(seen.insert(*code), "{name}: value {code} used twice");
            assert!(name.starts_with("GORT_"), "{name}");
            assert!(text.ends_with('\0') && !text[..text.len() - 1].contains('\0'));
            // SAFETY: gort_strerror returns a static NUL-terminated string.
            let got = unsafe { std::ffi::CStr::from_ptr(gort_strerror(*code)) };
            assert_eq!(got.to_bytes(), &text.as_bytes()[..text.len() - 1]);
        }
        // SAFETY: as above.
        let unknown = unsafe { std::ffi::CStr::from_ptr(gort_strerror(12345)) };
        assert_eq!(unknown.to_str(), Ok("unknown gort status"));
    }
}
