//! aarch64 signal context. Differences from the x86_64 reference:
//!
//! - Registers are named fields of `mcontext_t` (`regs[0..31]`, `sp`, `pc`,
//!   `pstate`, and the kernel's own copy of the fault address), not a
//!   `gregs` array. The frame pointer is `x29`; the link register `x30`
//!   matters for tracebacks because a fault in a leaf function has not
//!   saved it yet.
//! - Whether a fault was a write is in the ESR (exception syndrome), which
//!   the kernel does not put in a register slot: it appends an
//!   `esr_context` record to the `__reserved` area that follows `pstate`,
//!   a sequence of `{magic, size}`-headed records ended by a zero header.
//!   `libc` keeps `__reserved` private (and at the wrong offset: it aligns
//!   it to 8, the kernel and glibc to 16), so its offset and the two record
//!   types are mirrored here and asserted below.
//!
//! ```text
//!   ucontext_t + 176: uc_mcontext
//!     +   0  fault_address
//!     +   8  regs[0..31]           x0 … x30
//!     + 256  sp
//!     + 264  pc                    (ucontext_t + 440, as in docs/cross-arch.md)
//!     + 272  pstate
//!     + 280  (pad to 16)
//!     + 288  __reserved[4096]:     { magic u32, size u32, payload }…
//!              fpsimd_context      magic 0x46508001, size 528
//!              esr_context         magic 0x45535201, size 16 (faults only)
//!              …                   (SVE, ZA, extra_context …)
//!              { 0, 0 }            terminator
//! ```
//!
//! Entry: the kernel (and qemu-aarch64) enter handlers with `sp` 16-aligned
//! and `x30` pointing at the signal trampoline, as after a `bl`; so
//! [`signal_entry`] is a plain Rust function.

use super::{SigCtx, call_target};
use core::ffi::{c_int, c_void};
use core::mem::{offset_of, size_of};
use core::ptr::{addr_of, read_unaligned};

/// Byte offset of `__reserved` in `mcontext_t`: after `pstate`, 16-aligned
/// (`__attribute__((__aligned__(16)))` in the kernel's `sigcontext`).
const RESERVED_OFFSET: usize = (offset_of!(libc::mcontext_t, pstate) + 8).next_multiple_of(16);
/// Size of `__reserved`.
const RESERVED_SIZE: usize = 4096;

/// The kernel's `struct _aarch64_ctx`: the header of every record in
/// `__reserved`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CtxHeader {
    magic: u32,
    /// Size of the whole record, header included.
    size: u32,
}

/// The kernel's `struct esr_context`.
#[repr(C)]
#[allow(dead_code, reason = "`head` is read through CtxHeader first")]
#[derive(Clone, Copy)]
struct EsrContext {
    head: CtxHeader,
    esr: u64,
}

/// `ESR_MAGIC` from the kernel's `asm/sigcontext.h`.
const ESR_MAGIC: u32 = 0x4553_5201;

const _: () = {
    // docs/cross-arch.md: fault_address at 176, PC at 440 in ucontext_t.
    assert!(offset_of!(libc::ucontext_t, uc_mcontext) == 176);
    assert!(offset_of!(libc::ucontext_t, uc_mcontext.fault_address) == 176);
    assert!(offset_of!(libc::ucontext_t, uc_mcontext.pc) == 440);
    assert!(offset_of!(libc::mcontext_t, regs) == 8);
    assert!(offset_of!(libc::mcontext_t, sp) == 256);
    assert!(offset_of!(libc::mcontext_t, pstate) == 272);
    // The mirrored layout: __reserved at 288 and 4096 bytes long, so the
    // whole of it lies inside mcontext_t.
    assert!(RESERVED_OFFSET == 288);
    assert!(size_of::<libc::mcontext_t>() == RESERVED_OFFSET + RESERVED_SIZE);
    assert!(size_of::<CtxHeader>() == 8);
    assert!(offset_of!(CtxHeader, size) == 4);
    assert!(size_of::<EsrContext>() == 16);
    assert!(offset_of!(EsrContext, esr) == 8);
};

/// ESR exception classes of a data abort (from EL0, from EL1).
const EC_DABT_LOW: u64 = 0x24;
const EC_DABT_CUR: u64 = 0x25;
/// ESR ISS bits of a data abort: write-not-read, cache maintenance.
const ESR_WNR: u64 = 1 << 6;
const ESR_CM: u64 = 1 << 8;

/// Names [`SigCtx::dump_regs`] emits, in order (Go's `dumpregs` on arm64).
pub const REG_NAMES: [&str; 34] = [
    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27",
    "r28", "r29", "lr", "sp", "pc", "fault",
];

impl SigCtx {
    /// The interrupted machine context.
    #[inline(always)]
    fn mc(&self) -> *const libc::mcontext_t {
        // SAFETY: from_raw's contract: uc points at a valid ucontext_t; this
        // only computes a field address.
        unsafe { addr_of!((*self.uc).uc_mcontext) }
    }

    /// `x<i>` of the interrupted context, `i` < 31.
    #[inline(always)]
    fn x(&self, i: usize) -> u64 {
        // SAFETY: mc() points at a valid mcontext_t; indexing is checked.
        unsafe { (*self.mc()).regs[i] }
    }

    /// The interrupted program counter: the faulting instruction for a
    /// fault or a `brk`, the next one for an asynchronous signal.
    pub fn pc(&self) -> usize {
        // SAFETY: mc() points at a valid mcontext_t.
        unsafe { (*self.mc()).pc as usize }
    }

    /// The interrupted stack pointer.
    pub fn sp(&self) -> usize {
        // SAFETY: mc() points at a valid mcontext_t.
        unsafe { (*self.mc()).sp as usize }
    }

    /// The interrupted frame pointer (`x29`).
    pub fn fp(&self) -> usize {
        self.x(29) as usize
    }

    /// The interrupted link register (`x30`).
    pub fn lr(&self) -> usize {
        self.x(30) as usize
    }

    /// For a data abort raised by the kernel (`SIGSEGV` or `SIGBUS` with a
    /// positive `si_code` and an `esr_context` whose class is a data
    /// abort), whether the access was a write (`WnR`, not counting cache
    /// maintenance, which reports as a write). `None` otherwise, including
    /// when the record is missing: qemu-aarch64 (7.2) writes `fpsimd`, SVE and
    /// `tpidr2` records but no `esr_context`.
    pub fn is_write(&self) -> Option<bool> {
        let sig = self.signo();
        if (sig != libc::SIGSEGV && sig != libc::SIGBUS) || self.code() <= 0 {
            return None;
        }
        let esr = self.esr()?;
        let ec = (esr >> 26) & 0x3f;
        if ec != EC_DABT_LOW && ec != EC_DABT_CUR {
            return None;
        }
        Some(esr & ESR_WNR != 0 && esr & ESR_CM == 0)
    }

    /// The ESR from the `esr_context` record in `__reserved`, if there is
    /// one. Walks the records with every header checked against the area's
    /// bounds, so a malformed or foreign context gives `None`, never a read
    /// outside `mcontext_t`. (The kernel places `esr_context` right after
    /// `fpsimd_context`, well inside `__reserved`, so `extra_context` is
    /// never followed.)
    fn esr(&self) -> Option<u64> {
        let base = self.mc().cast::<u8>().wrapping_add(RESERVED_OFFSET);
        let mut off = 0;
        while off + size_of::<CtxHeader>() <= RESERVED_SIZE {
            // SAFETY: [base, base + RESERVED_SIZE) lies inside the valid
            // mcontext_t (asserted above), and off + 8 <= RESERVED_SIZE.
            let head = unsafe { read_unaligned(base.add(off).cast::<CtxHeader>()) };
            let size = head.size as usize;
            if head.magic == 0 || size < size_of::<CtxHeader>() || size > RESERVED_SIZE - off {
                return None;
            }
            if head.magic == ESR_MAGIC {
                if size < size_of::<EsrContext>() {
                    return None;
                }
                // SAFETY: the record's size (checked against the area's end
                // above) covers a whole EsrContext.
                let rec = unsafe { read_unaligned(base.add(off).cast::<EsrContext>()) };
                return Some(rec.esr);
            }
            off += size;
        }
        None
    }

    /// Emits every general register as `(name, value)`, in [`REG_NAMES`]
    /// order; `fault` is the kernel's copy of the fault address.
    pub fn dump_regs(&self, out: &mut dyn FnMut(&'static str, u64)) {
        let mut values = [0u64; REG_NAMES.len()];
        for (i, v) in values.iter_mut().take(31).enumerate() {
            *v = self.x(i);
        }
        // SAFETY: mc() points at a valid mcontext_t.
        let (sp, pc, fault) =
            unsafe { ((*self.mc()).sp, (*self.mc()).pc, (*self.mc()).fault_address) };
        values[31] = sp;
        values[32] = pc;
        values[33] = fault;
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
