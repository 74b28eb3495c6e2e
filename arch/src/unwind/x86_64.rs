//! x86_64 unwinding steps: the reference implementation.
//!
//! - A `call` pushes the return address at `[sp]`; a function's CFI
//!   (`.eh_frame`, emitted by default) describes every instruction,
//!   prologues included, so no prologue step is needed.
//! - The kernel's `rt_sigframe` is `{ pretcode, ucontext_t, siginfo_t }`:
//!   a handler returns with `ret` to `pretcode`, the signal trampoline
//!   (`__restore_rt`: `mov $15, %rax` or `%eax`, then `syscall`), which
//!   leaves `sp` exactly at the `ucontext_t`. The interrupted registers are
//!   in its `uc_mcontext.gregs`, in the kernel's `sigcontext` order, which
//!   `libc` mirrors. glibc's CFI for `__restore_rt` says so too, in DWARF
//!   expressions that `framehop` does not evaluate, so the step recognises
//!   the trampoline by its code instead.
//! - No pointer authentication: return addresses are used as they are.
//! - `framehop`'s x86_64 unwinder reads the CFI.

use super::{Memory, Regs};
use core::mem::{offset_of, size_of};
use libc::{REG_RBP, REG_RIP, REG_RSP};

/// Byte offsets of the interrupted `rbp`, `rsp` and `rip` in `ucontext_t`.
const UC_GREGS: usize = offset_of!(libc::ucontext_t, uc_mcontext.gregs);
const UC_RBP: usize = UC_GREGS + REG_RBP as usize * size_of::<libc::greg_t>();
const UC_RSP: usize = UC_GREGS + REG_RSP as usize * size_of::<libc::greg_t>();
const UC_RIP: usize = UC_GREGS + REG_RIP as usize * size_of::<libc::greg_t>();

const _: () = {
    // The kernel's layout: uc_mcontext after uc_flags, uc_link and
    // uc_stack (8 + 8 + 24); gregs first in it; rip at 168 as in
    // docs/cross-arch.md.
    assert!(UC_GREGS == 40);
    assert!(UC_RBP == 40 + 10 * 8);
    assert!(UC_RSP == 40 + 15 * 8);
    assert!(UC_RIP == 168);
};

/// The signal trampolines the step recognises: glibc's `__restore_rt`
/// (`mov $15, %rax; syscall`) and musl's (`mov $15, %eax; syscall`).
const RESTORE_RT: [&[u8]; 2] = [
    &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
    &[0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
];

/// A return address lives on the stack: a call through a wild pointer left
/// it at `[sp]`, and the caller's `sp` is one word above. Kept only if it
/// points into known code.
pub fn wild_pc_caller(
    r: &Regs,
    mem: &(impl Memory + ?Sized),
    _ptr_auth_mask: usize,
) -> Option<Regs> {
    super::caller_from_stack_top(r, mem)
}

/// CFI describes prologues on x86_64.
pub fn prologue_caller(_r: &Regs, _mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    None
}

/// A return address at `__restore_rt`: the registers the signal
/// interrupted, from the `ucontext_t` at `sp`. The result is an exact pc
/// (the interrupted instruction, not a return address), and its `sp` may
/// lie on another stack (the handler ran on the signal stack).
pub fn sigreturn_caller(r: &Regs, mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    let is_trampoline = RESTORE_RT
        .iter()
        .any(|code| mem.code(r.pc, code.len()) == Some(code));
    if !is_trampoline {
        return None;
    }
    let uc = r.sp;
    Some(Regs {
        pc: mem.word(uc.checked_add(UC_RIP)?)?,
        sp: mem.word(uc.checked_add(UC_RSP)?)?,
        fp: mem.word(uc.checked_add(UC_RBP)?)?,
        lr: 0,
    })
}

/// A function returns with `ret`, which pops `sp`: every step up moves
/// `sp` up.
pub const LEAF_RETURNS_THROUGH_LR: bool = false;

/// No pointer authentication on x86_64.
#[inline]
pub fn ptr_auth_mask(_max_code_address: usize) -> usize {
    usize::MAX
}

/// The registers at the point of use, as [`Regs`]: `pc` is the address of
/// the capturing instruction itself, `sp` and `fp` as they are there, `lr`
/// 0. For tests and tools that walk their own stack.
#[macro_export]
macro_rules! current_regs {
    () => {{
        let (pc, sp, fp): (usize, usize, usize);
        // SAFETY: only reads registers into outputs.
        unsafe {
            ::core::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {fp}, rbp",
                pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp,
                options(nomem, nostack, preserves_flags),
            );
        }
        $crate::unwind::Regs { pc, sp, fp, lr: 0 }
    }};
}

#[cfg(feature = "cfi")]
pub use self::cfi::*;

#[cfg(feature = "cfi")]
mod cfi {
    use super::Regs;

    /// `framehop` reads x86_64 CFI.
    pub const CFI: bool = true;
    /// The CFI unwinder (`D`: section bytes, `P`: allocation policy).
    pub type CfiUnwinder<D, P> = framehop::x86_64::UnwinderX86_64<D, P>;
    /// Its cache (rules and a DWARF evaluation context).
    pub type CfiCache<P> = framehop::x86_64::CacheX86_64<P>;
    /// The registers it steps.
    pub type CfiRegs = framehop::x86_64::UnwindRegsX86_64;

    /// The registers CFI steps from: `rip`, `rsp`, `rbp`.
    #[inline]
    pub fn cfi_regs(r: &Regs, _ptr_auth_mask: usize) -> CfiRegs {
        CfiRegs::new(r.pc as u64, r.sp as u64, r.fp as u64)
    }

    /// The caller's registers after a CFI step found return address `ra`.
    #[inline]
    pub fn from_cfi_regs(regs: &CfiRegs, ra: usize) -> Regs {
        Regs {
            pc: ra,
            sp: regs.sp() as usize,
            fp: regs.bp() as usize,
            lr: ra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{WORD, tests::Fake};
    use super::*;

    /// Symptom: a trace taken from inside a signal handler stops at the
    /// signal frame instead of continuing into the code the signal
    /// interrupted.
    #[test]
    fn the_signal_trampoline_leads_to_the_interrupted_registers() {
        for tramp in RESTORE_RT {
            let code_at = 0x40_0000;
            let mut uc = [0usize; size_of::<libc::ucontext_t>() / WORD];
            uc[UC_RIP / WORD] = 0x40_1234;
            uc[UC_RSP / WORD] = 0x9000;
            uc[UC_RBP / WORD] = 0x9040;
            let mem = Fake {
                stack_at: 0x7000,
                stack: &uc,
                code_at,
                code: tramp,
            };
            let r = Regs {
                pc: code_at,
                sp: 0x7000,
                fp: 0,
                lr: 0,
            };
            let up = sigreturn_caller(&r, &mem).expect("the trampoline");
            assert_eq!(
                up,
                Regs {
                    pc: 0x40_1234,
                    sp: 0x9000,
                    fp: 0x9040,
                    lr: 0
                }
            );
            // One byte off: not the trampoline.
            let r = Regs {
                pc: code_at + 1,
                ..r
            };
            assert_eq!(sigreturn_caller(&r, &mem), None);
        }
    }
}
