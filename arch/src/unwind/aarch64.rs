//! aarch64 unwinding steps. Differences from the x86_64 reference:
//!
//! - A call (`bl`, `blr`) leaves the return address in the link register
//!   `x30`, not on the stack: after a call through a wild pointer the
//!   caller is `lr`, and `sp` is unchanged. A leaf function may return
//!   through `lr` without ever touching `sp`, so the first step up may
//!   keep `sp` ([`LEAF_RETURNS_THROUGH_LR`]).
//! - Return addresses may carry a pointer-authentication code in their
//!   high bits (`paciasp`); [`ptr_auth_mask`] keeps only the bits an
//!   address of known code can use, as `framehop`'s
//!   `PtrAuthMask::from_max_known_address` does.
//! - The signal trampoline (`__kernel_rt_sigreturn`) is in the vDSO, which
//!   is not a module listed at start-up: a walk does not cross a signal
//!   frame (it starts from the `ucontext_t`, which is what a handler has).

use super::{Memory, Regs};

/// The caller is in `lr` (pointer-authentication bits stripped); `sp` and
/// `fp` are unchanged by the call. Kept only if it points into known code.
pub fn wild_pc_caller(
    r: &Regs,
    mem: &(impl Memory + ?Sized),
    ptr_auth_mask: usize,
) -> Option<Regs> {
    let up = Regs {
        pc: r.lr & ptr_auth_mask,
        sp: r.sp,
        fp: r.fp,
        lr: r.lr,
    };
    (up.pc != 0 && mem.is_code(up.pc - 1)).then_some(up)
}

/// CFI describes prologues on aarch64.
pub fn prologue_caller(_r: &Regs, _mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    None
}

/// The trampoline is in the vDSO, not in known code: not recognised.
pub fn sigreturn_caller(_r: &Regs, _mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    None
}

/// A leaf returns through `lr` without touching `sp`.
pub const LEAF_RETURNS_THROUGH_LR: bool = true;

/// All ones up to the highest set bit of the highest known code address:
/// the bits above can only be a pointer-authentication code.
#[inline]
pub fn ptr_auth_mask(max_code_address: usize) -> usize {
    usize::MAX
        .checked_shr(max_code_address.leading_zeros())
        .unwrap_or(usize::MAX)
}

/// As on x86_64, with `lr` (`x30`) as it is at the point of use.
#[macro_export]
macro_rules! current_regs {
    () => {{
        let (pc, sp, fp, lr): (usize, usize, usize, usize);
        // SAFETY: only reads registers into outputs.
        unsafe {
            ::core::arch::asm!(
                "adr {pc}, .",
                "mov {sp}, sp",
                "mov {fp}, x29",
                "mov {lr}, x30",
                pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, lr = out(reg) lr,
                options(nomem, nostack, preserves_flags),
            );
        }
        $crate::unwind::Regs { pc, sp, fp, lr }
    }};
}

#[cfg(feature = "cfi")]
pub use self::cfi::*;

#[cfg(feature = "cfi")]
mod cfi {
    use super::Regs;

    /// `framehop` reads aarch64 CFI.
    pub const CFI: bool = true;
    /// The CFI unwinder.
    pub type CfiUnwinder<D, P> = framehop::aarch64::UnwinderAarch64<D, P>;
    /// Its cache.
    pub type CfiCache<P> = framehop::aarch64::CacheAarch64<P>;
    /// The registers it steps.
    pub type CfiRegs = framehop::aarch64::UnwindRegsAarch64;

    /// The registers CFI steps from: `lr`, `sp`, `fp` (`x29`), with the
    /// mask that strips pointer authentication from return addresses.
    #[inline]
    pub fn cfi_regs(r: &Regs, ptr_auth_mask: usize) -> CfiRegs {
        let mask = framehop::aarch64::PtrAuthMask(ptr_auth_mask as u64);
        CfiRegs::new_with_ptr_auth_mask(mask, r.lr as u64, r.sp as u64, r.fp as u64)
    }

    /// The caller's registers after a CFI step found return address `ra`.
    #[inline]
    pub fn from_cfi_regs(regs: &CfiRegs, ra: usize) -> Regs {
        Regs {
            pc: ra,
            sp: regs.sp() as usize,
            fp: regs.fp() as usize,
            lr: ra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values `framehop`'s own tests give for
    /// `PtrAuthMask::from_max_known_address`.
    #[test]
    fn the_mask_matches_framehops() {
        for (max, mask) in [
            (0x0000_aaaa_b54f_7000usize, 0x0000_ffff_ffff_ffffusize),
            (0x0000_ffff_a320_6000, 0x0000_ffff_ffff_ffff),
            (0xffff_ffff_c05a_9000, 0xffff_ffff_ffff_ffff),
            (0x0000_55ba_9f07_e000, 0x0000_7fff_ffff_ffff),
        ] {
            assert_eq!(ptr_auth_mask(max), mask, "{max:#x}");
        }
    }
}
