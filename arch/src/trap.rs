//! Instructions that trap on purpose, for crash-tracing tests: the one
//! topic of this crate where every architecture differs by a single
//! instruction, so one file holds all three (a `mod.rs` plus three
//! one-line files would hide the contrast rather than show it).
//!
//! Contract: [`illegal_instruction`] executes an instruction the CPU
//! defines as permanently undefined, so the kernel sends `SIGILL` with
//! `ILL_ILLOPN`/`ILL_ILLOPC` and the signal context's pc on that
//! instruction. It never returns.

cfg_if::cfg_if! {
    if #[cfg(any(target_arch = "x86_64", target_arch = "x86"))] {
        /// Executes `ud2` (0f 0b), x86's architecturally undefined
        /// instruction (the kernel reports `ILL_ILLOPN`).
        #[inline(never)]
        pub fn illegal_instruction() -> ! {
            // SAFETY: `ud2` touches no memory or register; it raises #UD,
            // which the kernel turns into SIGILL on this thread.
            unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
        }
    } else if #[cfg(target_arch = "aarch64")] {
        /// Executes `udf #0`, the A64 permanently undefined encoding
        /// (0x00000000; the kernel reports `ILL_ILLOPC`).
        #[inline(never)]
        pub fn illegal_instruction() -> ! {
            // SAFETY: `udf` touches no memory or register; it raises an
            // undefined-instruction exception, delivered as SIGILL.
            unsafe { core::arch::asm!("udf #0", options(noreturn, nomem, nostack)) }
        }
    } else {
        compile_error!("arch::trap: no illegal instruction for this architecture");
    }
}
