//! aarch64 (AAPCS64) context switch. Read `x86_64.rs` first: this file
//! comments only what differs.
//!
//! # What must survive a switch
//!
//! AAPCS64 makes `x19`–`x28`, the frame pointer `x29` and the low 64 bits of
//! `v8`–`v15` (that is, `d8`–`d15`) callee-saved. The return address lives in
//! the link register `x30`, not on the stack, so [`switch`] saves it like any
//! other register. FPCR holds the rounding mode, flush-to-zero and trap
//! enables; AAPCS64 calls it global state that only support functions may
//! change, so it belongs to the thread of control and switches with the
//! context, as MXCSR does on x86_64. FPSR (the sticky exception flags) is
//! status, not control, and is left alone.
//!
//! # Frame layout
//!
//! One `sub sp` reserves the whole record; `stp`/`ldp` pairs fill it. `x29`
//! and `x30` sit at the top in the order of an AAPCS64 frame record, so
//! `sp + 160` of a parked context is a valid frame record for frame-pointer
//! walkers. The record is 176 bytes, a multiple of 16, so `sp` stays 16-aligned
//! as AArch64 requires at every memory access through `sp`.
//!
//! ```text
//!            +--------------------+  <- sp + 176: caller's sp after `ret`
//!   sp + 168 | x30 (lr)           |  pc of the parked context
//!   sp + 160 | x29 (fp)           |  fp of the parked context
//!   sp + 152 | x28                |
//!            | ...                |
//!   sp +  80 | x19                |
//!   sp +  72 | d15                |
//!            | ...                |
//!   sp +  16 | d8                 |
//!   sp +   8 | 0                  |  padding to a multiple of 16
//!   sp +   0 | fpcr               |
//!            +--------------------+  <- saved sp
//! ```
//!
//! # A new context
//!
//! [`init_stack`] writes the record with `x30` = [`trampoline`], `x19` =
//! entry function, `x20` = data, `x29` = 0 and FPCR = 0 (a new Linux
//! thread's value: round to nearest, no traps). Above it, a zero frame record
//! at `top - 16` ends any chain a scanner follows, and is where `sp` points
//! (16-aligned) when the trampoline runs:
//!
//! ```text
//!   top       +--------------------+  (16-aligned)
//!   top - 16  | 0, 0               |  <- sp when the trampoline runs
//!   top - 24  | &trampoline (x30)  |
//!   top - 32  | 0 (x29)            |
//!             | x28..x21 = 0, data (x20), entry (x19), d15..d8 = 0, 0
//!   top - 192 | 0 (fpcr)           |
//!             +--------------------+  <- sp returned by init_stack
//! ```
//!
//! # CFI
//!
//! Unlike x86_64, the CFA on entry is `sp` itself (the CIE's
//! `DW_CFA_def_cfa: sp + 0`) and the return address column is `x30`, not a
//! stack slot. After the `sub`, `.cfi_def_cfa_offset 176` says CFA = sp + 176
//! and each `.cfi_rel_offset reg, off` says "saved at sp + off", which the
//! assembler turns into `DW_CFA_offset reg, off - 176`. Decoded by
//! `readelf --debug-dump=frames` (d8-d15 are DWARF 72-79, `v8`-`v15`):
//!
//! ```text
//!   switch:     DW_CFA_def_cfa_offset: 176
//!               DW_CFA_offset: r29 (x29) at cfa-16
//!               DW_CFA_offset: r30 (x30) at cfa-8
//!               DW_CFA_offset: r19 (x19) at cfa-96   ... r28 at cfa-24
//!               DW_CFA_offset_extended: r72 (v8) at cfa-160 ... r79 at cfa-104
//!               ... after the `add`: DW_CFA_def_cfa_offset: 0, DW_CFA_restore*
//!   trampoline: DW_CFA_undefined: r30 (x30)
//! ```

use super::{EntryFn, SavedRegs};
use core::arch::naked_asm;
use core::mem::{offset_of, size_of};

/// Alignment of the stack pointer at a call instruction (and, on AArch64,
/// at any access through `sp`).
pub const STACK_ALIGN: usize = 16;

/// Bytes below the stack top that [`init_stack`] writes.
pub const INIT_FRAME_BYTES: usize = 16 + size_of::<SwitchFrame>();

/// The record [`switch`] stores on the stack it leaves (see the module docs
/// for the picture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchFrame {
    /// FPCR as read by `mrs`.
    pub fpcr: u64,
    /// Keeps the record a multiple of 16 bytes.
    pub pad: u64,
    /// Callee-saved `d8`–`d15` (low halves of `v8`–`v15`).
    pub d: [u64; 8],
    /// Callee-saved `x19`–`x28`; a new context has the entry function in
    /// `x[0]` (`x19`) and its data in `x[1]` (`x20`).
    pub x: [u64; 10],
    /// Frame pointer `x29` of the parked context.
    pub fp: u64,
    /// Link register `x30`: where the parked context resumes.
    pub lr: u64,
}

/// Offset of `d8 + 2 * i` in the record, for the `stp`/`ldp` pairs.
const fn d_off(i: usize) -> usize {
    offset_of!(SwitchFrame, d) + 16 * i
}
/// Offset of `x19 + 2 * i` in the record, for the `stp`/`ldp` pairs.
const fn x_off(i: usize) -> usize {
    offset_of!(SwitchFrame, x) + 16 * i
}

// `stp`/`ldp` move pairs: each pair must be adjacent, and the `fp`/`lr` pair
// must be in frame-record order. The record must keep `sp` 16-aligned and
// fit the signed 7-bit, 8-scaled `stp` offset (at most 504).
const _: () = {
    assert!(size_of::<SwitchFrame>() == 176);
    assert!(size_of::<SwitchFrame>() % STACK_ALIGN == 0);
    assert!(size_of::<SwitchFrame>() <= 504);
    assert!(offset_of!(SwitchFrame, fpcr) == 0);
    assert!(offset_of!(SwitchFrame, d) == 16);
    assert!(offset_of!(SwitchFrame, x) == 80);
    assert!(offset_of!(SwitchFrame, fp) == 160);
    assert!(offset_of!(SwitchFrame, lr) == offset_of!(SwitchFrame, fp) + 8);
};

/// FPCR of a new Linux thread: round to nearest, no traps, no flush-to-zero.
const FPCR_DEFAULT: u64 = 0;

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
        // Entry: x0 = save, x1 = to, x2 = arg, x30 = return address,
        // CFA = sp. Reserve the record first: storing below sp is not
        // allowed (a signal handler could overwrite it; there is no red zone).
        "sub sp, sp, #{frame}",
        ".cfi_def_cfa_offset {frame}",
        // The frame record first, so the CFI for the return address column
        // (x30) is in place as early as possible.
        "stp x29, x30, [sp, #{fp}]",
        ".cfi_rel_offset x29, {fp}",
        ".cfi_rel_offset x30, {lr}",
        "stp x19, x20, [sp, #{x0}]",
        ".cfi_rel_offset x19, {x0}",
        ".cfi_rel_offset x20, {x0} + 8",
        "stp x21, x22, [sp, #{x1}]",
        ".cfi_rel_offset x21, {x1}",
        ".cfi_rel_offset x22, {x1} + 8",
        "stp x23, x24, [sp, #{x2}]",
        ".cfi_rel_offset x23, {x2}",
        ".cfi_rel_offset x24, {x2} + 8",
        "stp x25, x26, [sp, #{x3}]",
        ".cfi_rel_offset x25, {x3}",
        ".cfi_rel_offset x26, {x3} + 8",
        "stp x27, x28, [sp, #{x4}]",
        ".cfi_rel_offset x27, {x4}",
        ".cfi_rel_offset x28, {x4} + 8",
        // d8-d15 (DWARF numbers 72-79: the v registers).
        "stp d8, d9, [sp, #{d0}]",
        ".cfi_rel_offset d8, {d0}",
        ".cfi_rel_offset d9, {d0} + 8",
        "stp d10, d11, [sp, #{d1}]",
        ".cfi_rel_offset d10, {d1}",
        ".cfi_rel_offset d11, {d1} + 8",
        "stp d12, d13, [sp, #{d2}]",
        ".cfi_rel_offset d12, {d2}",
        ".cfi_rel_offset d13, {d2} + 8",
        "stp d14, d15, [sp, #{d3}]",
        ".cfi_rel_offset d14, {d3}",
        ".cfi_rel_offset d15, {d3} + 8",
        // FP control state; x9 is a caller-saved temporary. The padding
        // word is never written: nothing reads it.
        "mrs x9, fpcr",
        "str x9, [sp, #{fpcr}]",
        // Publish the saved context, then adopt the other stack. `str`
        // cannot store `sp` (register 31 there is xzr), hence x9.
        "mov x9, sp",
        "str x9, [x0]",
        "mov sp, x1",
        // Pop the other context's record in the reverse order.
        "ldr x9, [sp, #{fpcr}]",
        "msr fpcr, x9",
        "ldp d14, d15, [sp, #{d3}]",
        "ldp d12, d13, [sp, #{d2}]",
        "ldp d10, d11, [sp, #{d1}]",
        "ldp d8, d9, [sp, #{d0}]",
        "ldp x27, x28, [sp, #{x4}]",
        "ldp x25, x26, [sp, #{x3}]",
        "ldp x23, x24, [sp, #{x2}]",
        "ldp x21, x22, [sp, #{x1}]",
        "ldp x19, x20, [sp, #{x0}]",
        "ldp x29, x30, [sp, #{fp}]",
        "add sp, sp, #{frame}",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore x19", ".cfi_restore x20", ".cfi_restore x21",
        ".cfi_restore x22", ".cfi_restore x23", ".cfi_restore x24",
        ".cfi_restore x25", ".cfi_restore x26", ".cfi_restore x27",
        ".cfi_restore x28", ".cfi_restore x29", ".cfi_restore x30",
        ".cfi_restore d8", ".cfi_restore d9", ".cfi_restore d10",
        ".cfi_restore d11", ".cfi_restore d12", ".cfi_restore d13",
        ".cfi_restore d14", ".cfi_restore d15",
        // `arg` becomes the resumed side's return value; `ret` jumps to x30.
        "mov x0, x2",
        "ret",
        ".cfi_endproc",
        frame = const size_of::<SwitchFrame>(),
        fpcr = const offset_of!(SwitchFrame, fpcr),
        d0 = const d_off(0),
        d1 = const d_off(1),
        d2 = const d_off(2),
        d3 = const d_off(3),
        x0 = const x_off(0),
        x1 = const x_off(1),
        x2 = const x_off(2),
        x3 = const x_off(3),
        x4 = const x_off(4),
        fp = const offset_of!(SwitchFrame, fp),
        lr = const offset_of!(SwitchFrame, lr),
    )
}

/// First code a new context runs; reached by the `ret` of [`switch`] with
/// `x19` = entry function, `x20` = data, `x0` = the switch's `arg`, `x29` =
/// 0, `x30` = the trampoline itself and `sp` 16-aligned on the zero frame
/// record that [`init_stack`] left at `top - 16`.
///
/// The return-address column is `x30`, so the CFI marks `x30` undefined.
/// `x30` is also cleared before anything else: until the `blr` it would point
/// back at the trampoline, and a frame-pointer/link-register walker sampling
/// here would loop. Clearing it first is what glibc's `_start` does too.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined x30",
        "mov x30, xzr",
        "mov x29, xzr",
        "mov x1, x0",
        "mov x0, x20",
        "blr x19",
        // The entry function never returns.
        "brk #0x1",
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
    let mut x = [0u64; 10];
    x[0] = entry as usize as u64;
    x[1] = data as u64;
    let frame = SwitchFrame {
        fpcr: FPCR_DEFAULT,
        pad: 0,
        d: [0; 8],
        x,
        fp: 0,
        lr: trampoline as *const () as usize as u64,
    };
    // SAFETY: the caller guarantees [sp, top) is writable stack memory of
    // the new context; sp is 16-aligned, more than SwitchFrame needs.
    unsafe {
        (sp as *mut SwitchFrame).write(frame);
        ((top - 16) as *mut [u64; 2]).write([0, 0]);
    }
    sp
}

/// Registers of the context parked at `sp`. `pc` and `lr` are both the
/// saved `x30`: the parked context resumes at its link register.
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
        pc: frame.lr as usize,
        sp: sp + size_of::<SwitchFrame>(),
        fp: frame.fp as usize,
        lr: frame.lr as usize,
    }
}
