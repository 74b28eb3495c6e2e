//! x86_64 (System V AMD64) context switch: the reference implementation.
//!
//! # What must survive a switch
//!
//! The System V ABI makes `rbx`, `rbp`, `r12`–`r15` callee-saved, plus the
//! control bits of `MXCSR` (SSE rounding and exception masks) and the x87
//! control word. All `xmm`/`ymm` registers are caller-saved, so the compiler
//! has already spilled any it needs before calling [`switch`]. The direction
//! flag is clear at every call boundary by the ABI, so it needs no saving.
//!
//! # Frame layout
//!
//! [`switch`] pushes the callee-saved registers on the stack it leaves, so a
//! saved context is a single stack pointer. Addresses grow upwards:
//!
//! ```text
//!            +--------------------+  <- sp + 64: caller's sp after `ret`
//!   sp + 56  | return address     |  pc of the parked context
//!   sp + 48  | rbp                |  fp of the parked context
//!   sp + 40  | rbx                |
//!   sp + 32  | r12                |
//!   sp + 24  | r13                |
//!   sp + 16  | r14                |
//!   sp +  8  | r15                |
//!   sp +  0  | mxcsr | x87 cw | 0 |  FP control state (4 + 2 + 2 bytes)
//!            +--------------------+  <- saved sp
//! ```
//!
//! # A new context
//!
//! [`init_stack`] writes the same record below the stack top with `pc` set to
//! [`trampoline`], `r12` = entry function, `r13` = data, `rbp` = 0. The first
//! `switch` into it pops that record and `ret`s into the trampoline, which
//! calls `entry(data, arg)`:
//!
//! ```text
//!   top      +--------------------+  (16-aligned)
//!   top - 8  | 0                  |  null words: a scanner sees "no caller"
//!   top - 16 | 0                  |  <- sp when the trampoline runs (16-aligned)
//!   top - 24 | &trampoline        |  SwitchFrame.pc
//!   top - 32 | 0 (rbp)            |
//!            | 0 (rbx), entry (r12), data (r13), 0, 0
//!   top - 80 | 0x1f80 | 0x037f    |  default MXCSR and x87 control word
//!            +--------------------+  <- sp returned by init_stack
//! ```

use super::{EntryFn, SavedRegs};
use core::arch::naked_asm;
use core::mem::{offset_of, size_of};

/// Alignment of the stack pointer at a call instruction.
pub const STACK_ALIGN: usize = 16;

/// Bytes below the stack top that [`init_stack`] writes.
pub const INIT_FRAME_BYTES: usize = 16 + size_of::<SwitchFrame>();

/// The record [`switch`] pushes on the stack it leaves (see the module docs
/// for the picture). Field order is push order reversed: the field at offset 0
/// is pushed last.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchFrame {
    /// MXCSR as stored by `stmxcsr`.
    pub mxcsr: u32,
    /// x87 FPU control word as stored by `fnstcw`.
    pub x87_cw: u16,
    /// Padding that keeps the integer registers 8-aligned.
    pub pad: u16,
    /// Callee-saved `r15`.
    pub r15: u64,
    /// Callee-saved `r14`.
    pub r14: u64,
    /// Callee-saved `r13`; a new context's entry `data`.
    pub r13: u64,
    /// Callee-saved `r12`; a new context's entry function.
    pub r12: u64,
    /// Callee-saved `rbx`.
    pub rbx: u64,
    /// Frame pointer of the parked context.
    pub rbp: u64,
    /// Return address of the parked context's `switch` call.
    pub pc: u64,
}

// The push sequence in `switch` hard-codes this order; the constants below
// are what the assembly and the tracebacks rely on.
const _: () = {
    assert!(size_of::<SwitchFrame>() == 64);
    assert!(offset_of!(SwitchFrame, r15) == 8);
    assert!(offset_of!(SwitchFrame, r14) == 16);
    assert!(offset_of!(SwitchFrame, r13) == 24);
    assert!(offset_of!(SwitchFrame, r12) == 32);
    assert!(offset_of!(SwitchFrame, rbx) == 40);
    assert!(offset_of!(SwitchFrame, rbp) == 48);
    assert!(offset_of!(SwitchFrame, pc) == 56);
    // `switch` reserves exactly the FP control area with one `sub rsp, 8`.
    assert!(offset_of!(SwitchFrame, r15) == 8);
};

/// Default MXCSR of a new thread: all exceptions masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1f80;
/// Default x87 control word of a new thread: extended precision, all masked.
const X87_CW_DEFAULT: u16 = 0x037f;

/// Saves the current context on the current stack, stores its stack pointer
/// in `*save`, and resumes the context whose stack pointer is `to`, which
/// sees `arg` as the return value of its own `switch` call (or as the second
/// argument of its entry function).
///
/// # Safety
///
/// `save` must be valid for a write. `to` must be a stack pointer produced by
/// [`init_stack`] or stored by an earlier `switch`, whose context has not
/// been resumed since, on a stack that is still mapped. The caller's own
/// stack must stay mapped until its context is resumed or abandoned.
#[unsafe(naked)]
pub unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        ".cfi_startproc",
        // Entry: rdi = save, rsi = to, rdx = arg, [rsp] = return address,
        // CFA = rsp + 8. Naked functions get no CFI from the compiler, so
        // the procedure is opened and closed here. Each push is followed by CFI so an unwinder stopped
        // anywhere inside knows where the caller's registers are.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbp, 0",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbx, 0",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r12, 0",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r13, 0",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r14, 0",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r15, 0",
        // FP control state: 8 bytes at the bottom of the record.
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "stmxcsr dword ptr [rsp + {mxcsr}]",
        "fnstcw word ptr [rsp + {x87_cw}]",
        // Publish the saved context, then adopt the other stack. Its record
        // has the same shape, so the CFI above stays true after the move.
        // Keep ours in scratch registers: the loads below are skipped when
        // the other context's values are the same (nearly always), because
        // `ldmxcsr` and `fldcw` stall the pipeline.
        "mov r8d, dword ptr [rsp + {mxcsr}]",
        "movzx r9d, word ptr [rsp + {x87_cw}]",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "cmp r8d, dword ptr [rsp + {mxcsr}]",
        "je 2f",
        "ldmxcsr dword ptr [rsp + {mxcsr}]",
        "2:",
        "cmp r9w, word ptr [rsp + {x87_cw}]",
        "je 3f",
        "fldcw word ptr [rsp + {x87_cw}]",
        "3:",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r15",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r14",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r13",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        // `arg` becomes the resumed side's return value; `ret` pops its pc.
        "mov rax, rdx",
        "ret",
        ".cfi_endproc",
        mxcsr = const offset_of!(SwitchFrame, mxcsr),
        x87_cw = const offset_of!(SwitchFrame, x87_cw),
    )
}

/// First code a new context runs; reached by the `ret` of [`switch`] with
/// `r12` = entry function, `r13` = data, `rax` = the switch's `arg`, `rbp` =
/// 0 and `rsp` 16-aligned.
///
/// Its CFI declares the return address undefined: DWARF unwinders (gdb,
/// libgcc's `_Unwind_Backtrace` behind std's `Backtrace`, perf) stop here;
/// frame-pointer walkers stop at the zero `rbp` the entry function pushes.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined rip",
        "mov rdi, r13",
        "mov rsi, rax",
        "call r12",
        // The entry function never returns.
        "ud2",
        ".cfi_endproc",
    )
}

/// Writes the first frame of a new context below `top` and returns the
/// stack pointer to give [`switch`].
///
/// # Safety
///
/// `[top - INIT_FRAME_BYTES - 15, top)` must be writable memory that belongs
/// to the new context's stack, and the stack below it must be large enough
/// for whatever `entry` runs.
pub unsafe fn init_stack(top: usize, entry: EntryFn, data: usize) -> usize {
    let top = top & !(STACK_ALIGN - 1);
    let sp = top - INIT_FRAME_BYTES;
    let frame = SwitchFrame {
        mxcsr: MXCSR_DEFAULT,
        x87_cw: X87_CW_DEFAULT,
        pad: 0,
        r15: 0,
        r14: 0,
        r13: data as u64,
        r12: entry as usize as u64,
        rbx: 0,
        rbp: 0,
        pc: trampoline as *const () as usize as u64,
    };
    // SAFETY: the caller guarantees [sp, top) is writable stack memory of
    // the new context; sp is 16-aligned, more than SwitchFrame needs.
    unsafe {
        (sp as *mut SwitchFrame).write(frame);
        ((top - 16) as *mut [u64; 2]).write([0, 0]);
    }
    sp
}

/// Registers of the context parked at `sp`.
///
/// # Safety
///
/// `sp` must have been stored by [`switch`] (or returned by [`init_stack`])
/// for a context that has not been resumed since, on a mapped stack.
pub unsafe fn saved_regs(sp: usize) -> SavedRegs {
    // SAFETY: by the contract, sp points at a SwitchFrame written by switch
    // or init_stack and not yet popped.
    let frame = unsafe { (sp as *const SwitchFrame).read() };
    SavedRegs {
        pc: frame.pc as usize,
        sp: sp + size_of::<SwitchFrame>(),
        fp: frame.rbp as usize,
        lr: frame.pc as usize,
    }
}
