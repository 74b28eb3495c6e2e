//! x86 (i686) signal context. Differences from the x86_64 reference:
//!
//! - `gregs` are 19 32-bit words (`libc::REG_GS` … `libc::REG_SS`), and
//!   `cs`, `fs`, `gs` each have their own slot (only the low 16 bits mean
//!   anything). The interrupted `eip` is at byte 76 of `ucontext_t`.
//! - [`signal_entry`] is an assembly trampoline, because qemu-i386 enters
//!   signal handlers with `esp` 16-aligned where the i386 System V ABI
//!   (as amended for SSE, and as Rust's i686 target assumes) wants
//!   `esp + 4` 16-aligned, i.e. `esp` ≡ 12 (mod 16). Rust code that keeps
//!   SSE values on the stack would then fault inside the handler. The
//!   trampoline realigns the stack whatever it was given, so it is correct
//!   on a native kernel (which gets the alignment right) too.
//!
//! # The trampoline
//!
//! Entry (cdecl): `[esp]` = return address (the signal trampoline that
//! calls `rt_sigreturn`), `[esp + 4]` = `sig`, `[esp + 8]` = `info`,
//! `[esp + 12]` = `uc`; `esp` ≡ 12 (mod 16) natively, ≡ 0 under qemu-i386.
//! It builds a standard `ebp` frame, aligns `esp` down to 16, copies the
//! three arguments into an outgoing [`Args`] block and calls [`dispatch`],
//! which loads [`SIGNAL_TARGET`](super::SIGNAL_TARGET) and calls it.
//! Loading the static in Rust rather than in the assembly avoids
//! hand-writing i386 position-independent code (a GOT base in `ebx`); the
//! `call` to a local function is PC-relative and needs none.
//!
//! ```text
//!   ebp + 16 | uc                  |  incoming Args (ebp + 8 + offset_of!)
//!   ebp + 12 | info                |
//!   ebp +  8 | sig                 |
//!   ebp +  4 | return address      |  <- esp on entry
//!   ebp +  0 | caller's ebp        |  <- ebp
//!            | 0–15 bytes padding  |  (and esp, -16)
//!   esp + 12 | (unused)            |
//!   esp +  8 | uc                  |  outgoing Args (esp + offset_of!)
//!   esp +  4 | info                |
//!   esp +  0 | sig                 |  <- esp at `call dispatch`: 16-aligned
//! ```

use super::{SigCtx, call_target};
use core::arch::naked_asm;
use core::ffi::{c_int, c_void};
use core::mem::{offset_of, size_of};
use libc::{
    REG_CS, REG_EAX, REG_EBP, REG_EBX, REG_ECX, REG_EDI, REG_EDX, REG_EFL, REG_EIP, REG_ERR,
    REG_ESI, REG_ESP, REG_FS, REG_GS, REG_TRAPNO,
};

/// Byte offset of the interrupted program counter in `ucontext_t`.
const UC_PC_OFFSET: usize =
    offset_of!(libc::ucontext_t, uc_mcontext.gregs) + REG_EIP as usize * size_of::<libc::greg_t>();

const _: () = {
    // docs/cross-arch.md: PC in ucontext at 76 (gregs[REG_EIP = 14]).
    assert!(size_of::<libc::greg_t>() == 4);
    assert!(offset_of!(libc::ucontext_t, uc_mcontext) == 20);
    assert!(UC_PC_OFFSET == 76);
    assert!(REG_TRAPNO == 12 && REG_ERR == 13 && REG_EIP == 14);
};

/// The arguments of an `SA_SIGINFO` handler as cdecl lays them out on the
/// stack, first argument lowest; the trampoline's offsets come from here.
#[repr(C)]
#[allow(dead_code, reason = "only its layout is used, by the trampoline")]
struct Args {
    sig: c_int,
    info: *mut libc::siginfo_t,
    uc: *mut c_void,
}

const _: () = {
    assert!(offset_of!(Args, sig) == 0);
    assert!(offset_of!(Args, info) == 4);
    assert!(offset_of!(Args, uc) == 8);
    // The outgoing block fits in the 16 bytes the trampoline reserves.
    assert!(size_of::<Args>() <= 16);
};

/// Incoming arguments start above the saved `ebp` and the return address.
const IN_ARGS: usize = 8;

/// Exception vector of a page fault (`#PF`).
const TRAP_PAGE_FAULT: i32 = 14;
/// Page-fault error code bit: the access was a write.
const PF_WRITE: i32 = 1 << 1;
/// The `si_code`s of a `SIGSEGV` raised by the kernel's page-fault
/// handler: `SEGV_MAPERR`, `SEGV_ACCERR`, `SEGV_PKUERR` (not in `libc`).
/// Its `SIGBUS` has `libc::BUS_ADRERR`.
const SEGV_PAGE_FAULT_CODES: [c_int; 3] = [1, 2, 4];

/// Names [`SigCtx::dump_regs`] emits, in order (Go's `dumpregs` on 386).
pub const REG_NAMES: [&str; 13] = [
    "eax", "ebx", "ecx", "edx", "edi", "esi", "ebp", "esp", "eip", "eflags", "cs", "fs", "gs",
];

impl SigCtx {
    /// `gregs[i]` of the interrupted context.
    #[inline(always)]
    fn greg(&self, i: c_int) -> i32 {
        // SAFETY: from_raw's contract: uc points at a valid ucontext_t; `i`
        // is one of libc's REG_* constants, all below gregs.len() (19).
        unsafe { (*self.uc).uc_mcontext.gregs[i as usize] }
    }

    /// The interrupted instruction pointer (`eip`).
    pub fn pc(&self) -> usize {
        self.greg(REG_EIP) as u32 as usize
    }

    /// The interrupted stack pointer (`esp`).
    pub fn sp(&self) -> usize {
        self.greg(REG_ESP) as u32 as usize
    }

    /// The interrupted frame pointer (`ebp`).
    pub fn fp(&self) -> usize {
        self.greg(REG_EBP) as u32 as usize
    }

    /// No link register on x86: always 0.
    pub fn lr(&self) -> usize {
        0
    }

    /// As on x86_64: bit 1 of the page-fault error code, for a signal
    /// raised by the kernel's page-fault handler (by `si_code`, with
    /// `trapno` 14 or -1 as qemu-i386 leaves it); `None` otherwise.
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
    /// order; segment registers are masked to their 16 bits.
    pub fn dump_regs(&self, out: &mut dyn FnMut(&'static str, u64)) {
        let g = |i| u64::from(self.greg(i) as u32);
        let seg = |i| g(i) & 0xffff;
        let values: [u64; REG_NAMES.len()] = [
            g(REG_EAX),
            g(REG_EBX),
            g(REG_ECX),
            g(REG_EDX),
            g(REG_EDI),
            g(REG_ESI),
            g(REG_EBP),
            g(REG_ESP),
            g(REG_EIP),
            g(REG_EFL),
            seg(REG_CS),
            seg(REG_FS),
            seg(REG_GS),
        ];
        for (name, v) in REG_NAMES.iter().zip(values) {
            out(name, v);
        }
    }
}

/// What the trampoline calls once the stack is aligned.
///
/// # Safety
///
/// As [`signal_entry`]'s.
unsafe extern "C" fn dispatch(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    // SAFETY: the arguments are the kernel's (this function's contract).
    unsafe { call_target(sig, info, uc) }
}

/// The function to install as `sa_sigaction`: realigns the stack (see the
/// module docs) and forwards to [`SIGNAL_TARGET`](super::SIGNAL_TARGET), or
/// returns if none is stored.
///
/// # Safety
///
/// Only the kernel calls it, as an `SA_SIGINFO` handler, with its own
/// `sig`, `info` and `uc`.
#[unsafe(naked)]
pub unsafe extern "C" fn signal_entry(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    naked_asm!(
        // Entry: args at [esp + 4 ..], CFA = esp + 4. Naked functions get no
        // CFI from the compiler, so the procedure is opened here; with it
        // an unwinder stopped in the handler walks through this frame to
        // the signal trampoline and on into the interrupted code.
        ".cfi_startproc",
        // A standard frame: ebp anchors the incoming arguments (and the
        // CFA) whatever the realignment below subtracts.
        "push ebp",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset ebp, 0",
        "mov ebp, esp",
        ".cfi_def_cfa_register ebp",
        // Align down to 16 and reserve the outgoing block: esp stays
        // 16-aligned, which is what the ABI wants at a `call`. Clobbers
        // eflags, which is caller-saved.
        "and esp, -16",
        "sub esp, 16",
        // Copy sig, info, uc through eax (caller-saved).
        "mov eax, [ebp + {in_args} + {sig}]",
        "mov [esp + {sig}], eax",
        "mov eax, [ebp + {in_args} + {info}]",
        "mov [esp + {info}], eax",
        "mov eax, [ebp + {in_args} + {uc}]",
        "mov [esp + {uc}], eax",
        // dispatch may clobber eax, ecx, edx (caller-saved, as for any
        // handler) and preserves ebx, esi, edi, ebp.
        "call {dispatch}",
        // Drop the block and the padding, restore the caller's ebp; the
        // CFA is esp + 4 again and `ret` returns to the signal trampoline.
        "mov esp, ebp",
        ".cfi_def_cfa_register esp",
        "pop ebp",
        ".cfi_adjust_cfa_offset -4",
        ".cfi_restore ebp",
        "ret",
        ".cfi_endproc",
        in_args = const IN_ARGS,
        sig = const offset_of!(Args, sig),
        info = const offset_of!(Args, info),
        uc = const offset_of!(Args, uc),
        dispatch = sym dispatch,
    )
}
