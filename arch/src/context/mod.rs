//! Context switching between stacks.
//!
//! # The contract
//!
//! Every architecture module provides exactly these items, re-exported here:
//!
//! - `struct SwitchFrame`: the `#[repr(C)]` record that [`switch`] pushes on
//!   the stack it leaves. It holds the callee-saved registers the ABI asks for
//!   (integer and floating point, including FP control state), the frame
//!   pointer and the return address. A context *is* the stack pointer that
//!   points at such a record: nothing else is saved anywhere.
//! - `unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize`:
//!   pushes a `SwitchFrame` on the current stack, stores the stack pointer
//!   through `save`, loads `to` (a stack pointer saved by an earlier `switch`
//!   or made by [`init_stack`]), pops its frame and returns there. `arg`
//!   travels across: it is the return value of the `switch` call that
//!   resumes, or the second argument of a new G's entry function.
//! - `unsafe fn init_stack(top: usize, entry: EntryFn, data: usize) -> usize`:
//!   writes, below `top`, a frame that the first [`switch`] to the returned
//!   stack pointer "returns" into the entry trampoline, which calls
//!   `entry(data, arg)` with the frame chain ended: a zero frame pointer and
//!   CFI that marks the return address undefined, so gdb, perf, std's
//!   `Backtrace` and gort's own unwinder stop at the G's entry.
//! - `fn saved_regs(sp: usize) -> SavedRegs` (unsafe: reads the frame): the
//!   `pc`, `sp`, `fp` and `lr` a traceback of the parked context starts from.
//! - `const STACK_ALIGN: usize` and `const INIT_FRAME_BYTES: usize` (how much
//!   of the stack [`init_stack`] uses).
//!
//! x86_64 is the reference implementation with every instruction explained;
//! the other architectures comment only where they differ.

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

/// Entry point of a new context. `data` is what [`init_stack`] was given,
/// `arg` what the first [`switch`] into the context passed. It must never
/// return: a finished G switches away for the last time instead.
pub type EntryFn = unsafe extern "C" fn(data: usize, arg: usize) -> !;

/// Registers of a parked context, read from its saved [`SwitchFrame`]: where a
/// traceback of that context starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SavedRegs {
    /// Address the context resumes at (the return address of its `switch`).
    pub pc: usize,
    /// Stack pointer of the caller of `switch` once it has resumed.
    pub sp: usize,
    /// Frame pointer of the caller of `switch`.
    pub fp: usize,
    /// Link register (aarch64); equal to `pc` elsewhere.
    pub lr: usize,
}
