//! x86_64 signal context: the reference implementation.
//!
//! # Where the kernel puts things
//!
//! The kernel's `rt_sigframe` holds a `ucontext_t` whose `uc_mcontext` is
//! glibc's `mcontext_t`: 23 64-bit `gregs` (the kernel's `sigcontext`, in
//! the order of `libc::REG_R8` … `libc::REG_CR2`), then a pointer to the
//! FP state. `libc` mirrors both exactly, so nothing is mirrored here; the
//! assertions below pin the one offset the rest of gort (and the table in
//! `docs/cross-arch.md`) relies on: the interrupted `rip` at byte 168.
//!
//! `gregs[REG_CSGSFS]` packs three 16-bit selectors and a pad, in the
//! kernel's `sigcontext` order `cs`, `gs`, `fs`, `__pad0` from the low bits
//! up. `gregs[REG_TRAPNO]` and `gregs[REG_ERR]` are the exception vector and
//! the error code the CPU pushed: for a page fault (vector 14) bit 1 of the
//! error code is set when the access was a write.
//!
//! # Entry
//!
//! The kernel enters handlers with `rsp + 8` 16-aligned, as after a `call`,
//! on native kernels and under qemu-x86_64 alike, so [`signal_entry`] is a
//! plain Rust function: it has compiler-generated CFI, which lets unwinders
//! walk from the handler through it to the signal trampoline.

use super::{SigCtx, call_target};
use core::ffi::{c_int, c_void};
use core::mem::{offset_of, size_of};
use libc::{
    REG_CSGSFS, REG_EFL, REG_ERR, REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14,
    REG_R15, REG_RAX, REG_RBP, REG_RBX, REG_RCX, REG_RDI, REG_RDX, REG_RIP, REG_RSI, REG_RSP,
    REG_TRAPNO,
};

/// Byte offset of the interrupted program counter in `ucontext_t`.
const UC_PC_OFFSET: usize =
    offset_of!(libc::ucontext_t, uc_mcontext.gregs) + REG_RIP as usize * size_of::<libc::greg_t>();

const _: () = {
    // `docs/cross-arch.md`: PC in ucontext at 168 (gregs[REG_RIP = 16]).
    assert!(size_of::<libc::greg_t>() == 8);
    assert!(offset_of!(libc::ucontext_t, uc_mcontext) == 40);
    assert!(UC_PC_OFFSET == 168);
    assert!(REG_RIP == 16 && REG_CSGSFS == 18 && REG_ERR == 19 && REG_TRAPNO == 20);
};

/// Exception vector of a page fault (`#PF`).
const TRAP_PAGE_FAULT: i64 = 14;
/// Page-fault error code bit: the access was a write.
const PF_WRITE: i64 = 1 << 1;
/// The `si_code`s of a `SIGSEGV` raised by the kernel's page-fault
/// handler: `SEGV_MAPERR`, `SEGV_ACCERR`, `SEGV_PKUERR` (not in `libc`).
/// Its `SIGBUS` has `libc::BUS_ADRERR`.
const SEGV_PAGE_FAULT_CODES: [c_int; 3] = [1, 2, 4];

/// Names [`SigCtx::dump_regs`] emits, in order (Go's `dumpregs` on amd64).
pub const REG_NAMES: [&str; 21] = [
    "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags", "cs", "fs", "gs",
];

impl SigCtx {
    /// `gregs[i]` of the interrupted context.
    #[inline(always)]
    fn greg(&self, i: c_int) -> i64 {
        // SAFETY: from_raw's contract: uc points at a valid ucontext_t; `i`
        // is one of libc's REG_* constants, all below gregs.len() (23).
        unsafe { (*self.uc).uc_mcontext.gregs[i as usize] }
    }

    /// The interrupted instruction pointer (`rip`): the faulting
    /// instruction for a fault, the next one for a trap (`int3`) or an
    /// asynchronous signal.
    pub fn pc(&self) -> usize {
        self.greg(REG_RIP) as usize
    }

    /// The interrupted stack pointer (`rsp`).
    pub fn sp(&self) -> usize {
        self.greg(REG_RSP) as usize
    }

    /// The interrupted frame pointer (`rbp`).
    pub fn fp(&self) -> usize {
        self.greg(REG_RBP) as usize
    }

    /// No link register on x86_64: always 0.
    pub fn lr(&self) -> usize {
        0
    }

    /// For a fault raised by the kernel's page-fault handler, whether the
    /// access was a write: bit 1 of the page-fault error code
    /// (`gregs[REG_ERR]`). `None` for anything else:
    ///
    /// - a signal sent with `kill`/`tgkill`, whose `trapno`/`err` are stale
    ///   leftovers of the thread's last fault;
    /// - a general-protection fault (non-canonical address, `si_code` =
    ///   `SI_KERNEL`), a `SIGBUS` alignment check and other exceptions,
    ///   whose error code has no write bit.
    ///
    /// The fault is recognised by its `si_code` (only the page-fault handler
    /// raises `SEGV_MAPERR`, `SEGV_ACCERR`, `SEGV_PKUERR` and, for
    /// `SIGBUS`, `BUS_ADRERR`) and a `trapno` that is 14 or not a vector at
    /// all: qemu-user stores -1 there but fills `err` correctly.
    pub fn is_write(&self) -> Option<bool> {
        let page_fault_code = match self.signo() {
            libc::SIGSEGV => SEGV_PAGE_FAULT_CODES.contains(&self.code()),
            libc::SIGBUS => self.code() == libc::BUS_ADRERR,
            _ => false,
        };
        let trapno = self.greg(REG_TRAPNO);
        if !page_fault_code || (trapno != TRAP_PAGE_FAULT && (0..32).contains(&trapno)) {
            return None;
        }
        Some(self.greg(REG_ERR) & PF_WRITE != 0)
    }

    /// Emits every general register as `(name, value)`, in [`REG_NAMES`]
    /// order.
    pub fn dump_regs(&self, out: &mut dyn FnMut(&'static str, u64)) {
        // cs, gs, fs: 16 bits each, from the low end of REG_CSGSFS.
        let csgsfs = self.greg(REG_CSGSFS) as u64;
        let (cs, gs, fs) = (
            csgsfs & 0xffff,
            (csgsfs >> 16) & 0xffff,
            (csgsfs >> 32) & 0xffff,
        );
        let g = |i| self.greg(i) as u64;
        let values: [u64; REG_NAMES.len()] = [
            g(REG_RAX),
            g(REG_RBX),
            g(REG_RCX),
            g(REG_RDX),
            g(REG_RDI),
            g(REG_RSI),
            g(REG_RBP),
            g(REG_RSP),
            g(REG_R8),
            g(REG_R9),
            g(REG_R10),
            g(REG_R11),
            g(REG_R12),
            g(REG_R13),
            g(REG_R14),
            g(REG_R15),
            g(REG_RIP),
            g(REG_EFL),
            cs,
            fs,
            gs,
        ];
        for (name, v) in REG_NAMES.iter().zip(values) {
            out(name, v);
        }
    }
}

/// The function to install as `sa_sigaction`: forwards to
/// [`SIGNAL_TARGET`](super::SIGNAL_TARGET), or returns if none is stored.
///
/// # Safety
///
/// Only the kernel calls it, as an `SA_SIGINFO` handler, with its own
/// `sig`, `info` and `uc`.
pub unsafe extern "C" fn signal_entry(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    // SAFETY: the arguments are the kernel's (this function's contract).
    unsafe { call_target(sig, info, uc) }
}
