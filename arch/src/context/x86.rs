//! x86 (i686, System V i386 ABI, `cdecl`) context switch. Read `x86_64.rs`
//! first: this file comments only what differs.
//!
//! # What must survive a switch
//!
//! The i386 ABI makes `ebx`, `esi`, `edi` and `ebp` callee-saved, plus the
//! control bits of MXCSR and the x87 control word, as on x86_64. There are
//! no callee-saved vector registers.
//!
//! # Arguments on the stack
//!
//! `cdecl` passes every argument on the stack: on entry `[esp]` is the
//! return address and `save`, `to`, `arg` follow it. [`switch`] reads them
//! after pushing its record, at `SAVE_ARG`, `TO_ARG` and `ARG_ARG` bytes
//! above the new `esp` (the record ends with the return address, so the
//! arguments start right past it). The return value travels in `eax`.
//!
//! # Frame layout
//!
//! ```text
//!            +--------------------+  <- esp + 28: caller's esp after `ret`
//!   esp + 24 | return address     |  pc of the parked context
//!   esp + 20 | ebp                |  fp of the parked context
//!   esp + 16 | ebx                |
//!   esp + 12 | esi                |
//!   esp +  8 | edi                |
//!   esp +  0 | mxcsr | x87 cw | 0 |
//!            +--------------------+  <- saved esp
//! ```
//!
//! # A new context, and the alignment at the entry call
//!
//! The i386 System V ABI (as GCC and LLVM implement it on Linux) requires
//! `esp` to be 16-aligned at every `call`, i.e. 12 mod 16 on a callee's first
//! instruction; Rust's i686 code relies on it for SSE spills. [`init_stack`]
//! puts the record so that the trampoline starts with `esp` 16-aligned at
//! `top - 16`; it then reserves 8 bytes and pushes two 4-byte arguments, so
//! `esp` is 16-aligned again at `call entry`:
//!
//! ```text
//!   top      +--------------------+  (16-aligned)
//!   top - 16 | 0, 0, 0, 0         |  <- esp when the trampoline runs
//!   top - 20 | &trampoline        |  SwitchFrame.pc
//!   top - 24 | 0 (ebp)            |
//!            | entry (ebx), data (esi), 0 (edi)
//!   top - 44 | 0x1f80 | 0x037f    |
//!            +--------------------+  <- esp returned by init_stack
//!
//!   in the trampoline, over the popped record:
//!   top - 24 | (8 bytes unused)   |
//!   top - 28 | arg                |  second argument of entry
//!   top - 32 | data               |  <- esp at `call entry` (16-aligned)
//! ```
//!
//! # CFI
//!
//! As on x86_64 with 4-byte slots: the CIE says CFA = esp + 4 and the return
//! address (column 8, `eip`) at CFA - 4. Decoded by
//! `readelf --debug-dump=frames`:
//!
//! ```text
//!   switch:     DW_CFA_def_cfa_offset: 8,  DW_CFA_offset: r5 (ebp) at cfa-8
//!               DW_CFA_def_cfa_offset: 12, DW_CFA_offset: r3 (ebx) at cfa-12
//!               DW_CFA_def_cfa_offset: 16, DW_CFA_offset: r6 (esi) at cfa-16
//!               DW_CFA_def_cfa_offset: 20, DW_CFA_offset: r7 (edi) at cfa-20
//!               DW_CFA_def_cfa_offset: 28 (the FP control area)
//!               ... then back down to 4 with a DW_CFA_restore per pop
//!   trampoline: DW_CFA_undefined: r8 (eip)
//!               DW_CFA_def_cfa_offset: 12, 16, 20 (the sub and the pushes)
//! ```
//!
//! The trampoline's CFA tracking matters as a second stop: at `call entry`
//! it puts CFA - 4 on the zero words at `top - 16`, so even an unwinder that
//! ignored `DW_CFA_undefined` would read a zero return address and stop.

use super::{EntryFn, SavedRegs};
use core::arch::naked_asm;
use core::mem::{offset_of, size_of};

/// Alignment of the stack pointer at a call instruction.
pub const STACK_ALIGN: usize = 16;

/// Bytes below the stack top that [`init_stack`] writes.
pub const INIT_FRAME_BYTES: usize = 16 + size_of::<SwitchFrame>();

/// The record [`switch`] pushes on the stack it leaves (see the module docs
/// for the picture). Field order is push order reversed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchFrame {
    /// MXCSR as stored by `stmxcsr`.
    pub mxcsr: u32,
    /// x87 FPU control word as stored by `fnstcw`.
    pub x87_cw: u16,
    /// Padding that keeps the integer registers 4-aligned.
    pub pad: u16,
    /// Callee-saved `edi`.
    pub edi: u32,
    /// Callee-saved `esi`; a new context's entry `data`.
    pub esi: u32,
    /// Callee-saved `ebx`; a new context's entry function.
    pub ebx: u32,
    /// Frame pointer of the parked context.
    pub ebp: u32,
    /// Return address of the parked context's `switch` call.
    pub pc: u32,
}

const _: () = {
    assert!(size_of::<SwitchFrame>() == 28);
    assert!(offset_of!(SwitchFrame, edi) == 8);
    assert!(offset_of!(SwitchFrame, esi) == 12);
    assert!(offset_of!(SwitchFrame, ebx) == 16);
    assert!(offset_of!(SwitchFrame, ebp) == 20);
    assert!(offset_of!(SwitchFrame, pc) == 24);
    // `switch` reserves exactly the FP control area with one `sub esp, 8`.
    assert!(offset_of!(SwitchFrame, edi) == 8);
};

/// Offset from `esp` of `switch`'s `save` argument once the record is pushed.
const SAVE_ARG: usize = size_of::<SwitchFrame>();
/// Offset from `esp` of `switch`'s `to` argument once the record is pushed.
const TO_ARG: usize = SAVE_ARG + 4;
/// Offset from `esp` of `switch`'s `arg` argument once the record is pushed.
const ARG_ARG: usize = SAVE_ARG + 8;

/// Default MXCSR of a new thread: all exceptions masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1f80;
/// Default x87 control word of a new thread: extended precision, all masked.
const X87_CW_DEFAULT: u16 = 0x037f;

/// See `x86_64.rs` for the contract; it is the same here.
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
        // Entry: [esp] = return address, [esp + 4..16] = save, to, arg;
        // CFA = esp + 4. Same pushes and CFI as x86_64, 4 bytes each.
        "push ebp",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset ebp, 0",
        "push ebx",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset ebx, 0",
        "push esi",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset esi, 0",
        "push edi",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset edi, 0",
        "sub esp, 8",
        ".cfi_adjust_cfa_offset 8",
        "stmxcsr dword ptr [esp + {mxcsr}]",
        "fnstcw word ptr [esp + {x87_cw}]",
        // The arguments, read from this stack before leaving it. eax, ecx
        // and edx are caller-saved; eax already holds the return value.
        "mov eax, [esp + {arg}]",
        "mov ecx, [esp + {save}]",
        "mov edx, [esp + {to}]",
        "mov [ecx], esp",
        "mov esp, edx",
        "ldmxcsr dword ptr [esp + {mxcsr}]",
        "fldcw word ptr [esp + {x87_cw}]",
        "add esp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop edi",
        ".cfi_adjust_cfa_offset -4",
        ".cfi_restore edi",
        "pop esi",
        ".cfi_adjust_cfa_offset -4",
        ".cfi_restore esi",
        "pop ebx",
        ".cfi_adjust_cfa_offset -4",
        ".cfi_restore ebx",
        "pop ebp",
        ".cfi_adjust_cfa_offset -4",
        ".cfi_restore ebp",
        "ret",
        ".cfi_endproc",
        mxcsr = const offset_of!(SwitchFrame, mxcsr),
        x87_cw = const offset_of!(SwitchFrame, x87_cw),
        save = const SAVE_ARG,
        to = const TO_ARG,
        arg = const ARG_ARG,
    )
}

/// First code a new context runs; reached by the `ret` of [`switch`] with
/// `ebx` = entry function, `esi` = data, `eax` = the switch's `arg`, `ebp` =
/// 0 and `esp` 16-aligned (see the module docs for the stack).
///
/// The return-address column on i386 is `eip` (DWARF 8).
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined eip",
        // entry(data, arg), pushed right to left; 8 + 4 + 4 bytes keep esp
        // 16-aligned at the call.
        "sub esp, 8",
        ".cfi_adjust_cfa_offset 8",
        "push eax",
        ".cfi_adjust_cfa_offset 4",
        "push esi",
        ".cfi_adjust_cfa_offset 4",
        "call ebx",
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
        edi: 0,
        esi: data as u32,
        ebx: entry as usize as u32,
        ebp: 0,
        pc: trampoline as *const () as usize as u32,
    };
    // SAFETY: the caller guarantees [sp, top) is writable stack memory of
    // the new context; sp is 4-aligned, as much as SwitchFrame needs.
    unsafe {
        (sp as *mut SwitchFrame).write(frame);
        ((top - 16) as *mut [u32; 4]).write([0; 4]);
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
        fp: frame.ebp as usize,
        lr: frame.pc as usize,
    }
}
