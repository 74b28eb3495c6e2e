//! x86 (i686) unwinding steps. Differences from the x86_64 reference:
//!
//! - `framehop` has no i686 unwinder, so walks follow frame pointers only
//!   (`ebp` → `[saved ebp, return address]`; Rust and glibc keep them only
//!   when built with `-C force-frame-pointers=yes`). Without CFI, an exact
//!   pc stopped on a function's first two instructions, before its frame
//!   record exists, needs [`prologue_caller`]: otherwise the frame-pointer
//!   step would skip the caller (`ebp` still names the caller's caller's
//!   frame).
//! - The signal trampoline is not recognised: frame pointers do not cross
//!   a signal frame (a walk starts from the `ucontext_t`, which is what a
//!   handler has).

use super::{Memory, Regs, WORD};

/// As on x86_64: the return address is at `[sp]`.
pub fn wild_pc_caller(
    r: &Regs,
    mem: &(impl Memory + ?Sized),
    _ptr_auth_mask: usize,
) -> Option<Regs> {
    super::caller_from_stack_top(r, mem)
}

/// `push ebp` (0x55).
const PUSH_EBP: u8 = 0x55;
/// `mov ebp, esp` (0x89 0xe5).
const MOV_EBP_ESP: [u8; 2] = [0x89, 0xe5];

/// An exact pc on a function's first two instructions. At `push ebp` the
/// return address is at `[sp]` and `ebp` is still the caller's; at
/// `mov ebp, esp` right after that push, the return address is at
/// `[sp + 4]` with the caller's `ebp` at `[sp]`. Code bytes are read only
/// inside known code ([`Memory::code`]).
pub fn prologue_caller(r: &Regs, mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    let after_push = || mem.code(r.pc.wrapping_sub(1), 1) == Some(&[PUSH_EBP]);
    let (ra_at, saved_fp) = match *mem.code(r.pc, 1)? {
        [PUSH_EBP] => (r.sp, r.fp),
        _ if mem.code(r.pc, 2) == Some(&MOV_EBP_ESP) && after_push() => {
            (r.sp.checked_add(WORD)?, mem.word(r.sp)?)
        }
        _ => return None,
    };
    let ra = mem.word(ra_at)?;
    if !mem.is_code(ra.wrapping_sub(1)) {
        return None;
    }
    Some(Regs {
        pc: ra,
        sp: ra_at.checked_add(WORD)?,
        fp: saved_fp,
        lr: ra,
    })
}

/// Not recognised on i686 (see the module docs).
pub fn sigreturn_caller(_r: &Regs, _mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    None
}

/// As on x86_64.
pub const LEAF_RETURNS_THROUGH_LR: bool = false;

/// As on x86_64.
#[inline]
pub fn ptr_auth_mask(_max_code_address: usize) -> usize {
    usize::MAX
}

/// As on x86_64; i686 has no pc-relative `lea`, so a `call` to the next
/// instruction pushes its address and a `pop` takes it back off, leaving
/// `esp` as it was.
#[macro_export]
macro_rules! current_regs {
    () => {{
        let (pc, sp, fp): (usize, usize, usize);
        // SAFETY: the call/pop pair leaves esp as it was; the rest reads
        // registers into outputs.
        unsafe {
            ::core::arch::asm!(
                "call 2f",
                "2: pop {pc}",
                "mov {sp}, esp",
                "mov {fp}, ebp",
                pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp,
                options(preserves_flags),
            );
        }
        $crate::unwind::Regs { pc, sp, fp, lr: 0 }
    }};
}

#[cfg(feature = "cfi")]
pub use self::cfi::*;

#[cfg(feature = "cfi")]
mod cfi {
    use super::super::{NoCfi, NoCfiCache};
    use super::Regs;

    /// No CFI unwinder for i686: frame pointers only.
    pub const CFI: bool = false;
    /// The stand-in that knows no code.
    pub type CfiUnwinder<D, P> = NoCfi<D, P>;
    /// Nothing to cache.
    pub type CfiCache<P> = NoCfiCache<P>;
    /// The stand-in steps gort's own registers.
    pub type CfiRegs = Regs;

    /// The registers as they are.
    #[inline]
    pub fn cfi_regs(r: &Regs, _ptr_auth_mask: usize) -> CfiRegs {
        *r
    }

    /// Never reached (the stand-in's steps fail); the registers as given.
    #[inline]
    pub fn from_cfi_regs(regs: &CfiRegs, ra: usize) -> Regs {
        Regs { pc: ra, ..*regs }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Fake;
    use super::*;

    /// Symptom: a fault on the first instruction of a function (a stack
    /// overflow at `push ebp`) drops its caller from the trace.
    #[test]
    fn a_pc_in_the_prologue_finds_its_caller() {
        // code: [0] ret  [1] push ebp  [2..4] mov ebp, esp  [4..] body
        let code = [0xc3u8, 0x55, 0x89, 0xe5, 0x90, 0x90, 0x90, 0x90];
        let code_at = 0x40_0000;
        let ra = code_at + 1; // any address just past known code
        let stack = [0x7100usize, ra, 0, 0];
        let mem = Fake {
            stack_at: 0x7000,
            stack: &stack,
            code_at,
            code: &code,
        };
        // At `push ebp`: ra at [sp], ebp is the caller's.
        let at_push = Regs {
            pc: code_at + 1,
            sp: 0x7000 + WORD,
            fp: 0x7200,
            lr: 0,
        };
        let up = prologue_caller(&at_push, &mem).expect("a caller");
        assert_eq!((up.pc, up.sp, up.fp), (ra, 0x7000 + 2 * WORD, 0x7200));
        // At `mov ebp, esp`: the caller's ebp at [sp], ra above it.
        let at_mov = Regs {
            pc: code_at + 2,
            sp: 0x7000,
            fp: 0x7300,
            lr: 0,
        };
        let up = prologue_caller(&at_mov, &mem).expect("a caller");
        assert_eq!((up.pc, up.sp, up.fp), (ra, 0x7000 + 2 * WORD, 0x7100));
        // In the body: not a prologue.
        let in_body = Regs {
            pc: code_at + 4,
            ..at_mov
        };
        assert_eq!(prologue_caller(&in_body, &mem), None);
    }
}
