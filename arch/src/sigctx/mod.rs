//! Typed access to the context the kernel hands a signal handler.
//!
//! An `SA_SIGINFO` handler receives a `siginfo_t` (why the signal came: the
//! number, `si_code`, the faulting address) and a `ucontext_t` (the
//! registers of the interrupted code). [`SigCtx`] wraps the two pointers and
//! reads them through `libc`'s types, so the crash handler in the `signals`
//! crate never indexes `gregs` or counts bytes itself.
//!
//! # The contract
//!
//! Every architecture module provides exactly these items:
//!
//! - `impl SigCtx` with `pc()`, `sp()`, `fp()`, `lr()` (the registers a
//!   traceback of the interrupted code starts from; `lr` is 0 where the
//!   architecture has no link register), `is_write()` (whether a memory
//!   fault was a write, when the hardware says so) and
//!   `dump_regs(out)` (every general register, named and ordered as Go's
//!   `dumpregs` prints them on that architecture).
//! - `const REG_NAMES: [&str; N]`: the names `dump_regs` emits, in order
//!   (`dump_regs` fills a `[u64; N]`, so the two cannot drift apart).
//! - `unsafe extern "C" fn signal_entry(sig, info, uc)`: the function to
//!   install as `sa_sigaction`. It calls the handler stored in
//!   [`SIGNAL_TARGET`] with the same three arguments, after fixing anything
//!   the platform gets wrong on handler entry (qemu-i386 enters handlers
//!   with the stack 16-aligned instead of the ABI's 12 mod 16, so on `x86`
//!   it is an assembly trampoline that realigns the stack). It returns at
//!   once if no target is stored.
//!
//! Arch-independent accessors ([`SigCtx::from_raw`], [`SigCtx::signo`],
//! [`SigCtx::code`], [`SigCtx::fault_addr`], the raw pointers) live here.
//! Each architecture file asserts at compile time that `libc`'s layout puts
//! the PC where the kernel does (offset 168 / 440 / 76 in `ucontext_t` on
//! x86_64 / aarch64 / x86) and the layout of every record it mirrors.
//!
//! # Async-signal safety
//!
//! Everything here runs inside signal handlers: every method is a few loads
//! from the two kernel structures, with no allocation, no locks, no TLS and
//! no formatting. `dump_regs` hands each value to a caller-supplied closure
//! instead of printing.
//!
//! x86_64 is the reference implementation with every choice explained; the
//! other architectures comment only where they differ.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

cfg_if::cfg_if! {
    if #[cfg(target_arch = "x86_64")] {
        mod x86_64;
        pub use self::x86_64::*;
    } else if #[cfg(target_arch = "aarch64")] {
        mod aarch64;
        pub use self::aarch64::*;
    } else if #[cfg(target_arch = "x86")] {
        mod x86;
        pub use self::x86::*;
    } else {
        compile_error!("gort: unsupported architecture; see docs/porting.md");
    }
}

/// The signature of an `SA_SIGINFO` handler, as [`SIGNAL_TARGET`] stores it.
pub type SignalHandler =
    unsafe extern "C" fn(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void);

/// The handler [`signal_entry`] forwards to, as a `usize`; 0 = none.
///
/// # Safety
///
/// Invariant: the value is 0 or a [`SignalHandler`] cast to `usize`
/// (`handler as usize`). Store it with `Ordering::Release` before installing
/// [`signal_entry`] with `sigaction`; [`signal_entry`] loads it with
/// `Acquire`, so whatever the handler reads that was written before the
/// store is visible to it on any thread. [`set_signal_target`] keeps the
/// invariant by construction.
pub static SIGNAL_TARGET: AtomicUsize = AtomicUsize::new(0);

/// Stores `handler` (or 0 for `None`) in [`SIGNAL_TARGET`] with `Release`.
pub fn set_signal_target(handler: Option<SignalHandler>) {
    SIGNAL_TARGET.store(handler.map_or(0, |f| f as usize), Ordering::Release);
}

/// Loads [`SIGNAL_TARGET`] and calls it with the kernel's arguments; the
/// body of every architecture's `signal_entry` (directly, or behind a
/// stack-realigning trampoline).
///
/// # Safety
///
/// `sig`, `info` and `uc` must be what the kernel passed to an `SA_SIGINFO`
/// handler (the target's own contract).
#[inline(always)]
unsafe fn call_target(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    let target = SIGNAL_TARGET.load(Ordering::Acquire);
    if target == 0 {
        return;
    }
    // SAFETY: SIGNAL_TARGET's invariant: a nonzero value is a SignalHandler
    // cast to usize, so transmuting it back gives that function pointer.
    let f = unsafe { core::mem::transmute::<usize, SignalHandler>(target) };
    // SAFETY: the arguments are the kernel's (this function's contract).
    unsafe { f(sig, info, uc) }
}

/// The kernel's view of one delivered signal: `siginfo_t` and `ucontext_t`.
///
/// Copy it freely inside the handler; do not keep it past the handler's
/// return (the kernel's frame is popped by `sigreturn`).
#[derive(Clone, Copy, Debug)]
pub struct SigCtx {
    uc: *mut libc::ucontext_t,
    info: *mut libc::siginfo_t,
}

impl SigCtx {
    /// Wraps the second and third arguments of an `SA_SIGINFO` handler.
    ///
    /// # Safety
    ///
    /// `info` must point at a valid `siginfo_t` and `uc` at a complete,
    /// valid `ucontext_t` (on aarch64 including the 4096-byte
    /// `__reserved` area), both non-null; the arguments the kernel passes
    /// qualify. They must stay valid, and nobody may write them
    /// concurrently, for as long as this `SigCtx` or a copy is used: in
    /// practice, until the handler returns.
    pub unsafe fn from_raw(info: *mut libc::siginfo_t, uc: *mut c_void) -> SigCtx {
        SigCtx {
            uc: uc.cast(),
            info,
        }
    }

    /// The signal number (`si_signo`).
    pub fn signo(&self) -> c_int {
        // SAFETY: from_raw's contract: info points at a valid siginfo_t.
        unsafe { (*self.info).si_signo }
    }

    /// Why the signal was sent (`si_code`): positive when the kernel raised
    /// it for a fault (`SEGV_MAPERR`, `BUS_ADRERR`, …), `SI_USER` (0),
    /// `SI_TKILL` and other non-positive values when a process sent it.
    pub fn code(&self) -> c_int {
        // SAFETY: from_raw's contract: info points at a valid siginfo_t.
        unsafe { (*self.info).si_code }
    }

    /// The faulting address (`si_addr`). Only meaningful for `SIGSEGV`,
    /// `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGTRAP` raised by the kernel; for
    /// the others that word of the union holds the sender's pid and uid.
    pub fn fault_addr(&self) -> usize {
        // SAFETY: from_raw's contract: info points at a valid siginfo_t;
        // si_addr reads a plain word of it, whatever the signal.
        unsafe { (*self.info).si_addr() as usize }
    }

    /// The `siginfo_t` pointer given to [`from_raw`](Self::from_raw), e.g.
    /// to chain to a previously installed handler.
    pub fn info_ptr(&self) -> *mut libc::siginfo_t {
        self.info
    }

    /// The `ucontext_t` pointer given to [`from_raw`](Self::from_raw), as
    /// the handler received it.
    pub fn uc_ptr(&self) -> *mut c_void {
        self.uc.cast()
    }
}
