//! The per-architecture steps of gort's stack walker.
//!
//! The walker itself (`signals::unwind`: DWARF CFI through `framehop`,
//! frame pointers as the fallback, every stack read bounds-checked) is the
//! same on every architecture. What differs lives here: where a call leaves
//! its return address, how a function's first instructions look before its
//! frame record exists, how a signal frame stores the interrupted registers
//! (the `ucontext_t` offsets), which bits of a return address are a
//! pointer-authentication code, and which `framehop` unwinder (if any)
//! reads the architecture's CFI.
//!
//! # The contract
//!
//! Every architecture module provides exactly these items, re-exported here:
//!
//! - `fn wild_pc_caller(r: &Regs, mem: &impl Memory, ptr_auth_mask: usize)
//!   -> Option<Regs>`: for a frame whose exact pc is outside known code (a
//!   call through a null or corrupt function pointer), the caller's
//!   registers from where the call left its return address (`[sp]` on x86,
//!   `lr` on aarch64).
//! - `fn prologue_caller(r: &Regs, mem: &impl Memory) -> Option<Regs>`:
//!   for an exact pc stopped on a function's first instructions, before its
//!   frame record exists, the caller's registers, where only frame pointers
//!   are followed (i686); `None` where CFI describes prologues.
//! - `fn sigreturn_caller(r: &Regs, mem: &impl Memory) -> Option<Regs>`:
//!   for a return address at the kernel's signal trampoline, the registers
//!   the signal interrupted, read from the `ucontext_t` the kernel left on
//!   the stack (offsets from `offset_of!` on `libc`'s structs, asserted at
//!   compile time); `None` where the trampoline is not recognised.
//! - `const LEAF_RETURNS_THROUGH_LR: bool`: whether the first step may
//!   keep `sp` (a leaf returns through a link register without touching
//!   the stack).
//! - `fn ptr_auth_mask(max_code_address: usize) -> usize`: the mask that
//!   strips pointer-authentication bits from a return address (all ones
//!   where there are none).
//! - With the `cfi` feature: `const CFI: bool` (whether `framehop` has an
//!   unwinder for the architecture), `type CfiUnwinder<D, P>` (made with
//!   `new()`), `type CfiCache<P>` (made with `new_in()`), `type CfiRegs`,
//!   `fn cfi_regs(&Regs, ptr_auth_mask) -> CfiRegs` and
//!   `fn from_cfi_regs(&CfiRegs, return_address) -> Regs`. Where `CFI` is
//!   false the unwinder is [`NoCfi`], which knows no code.
//! - `macro_rules! current_regs` (exported at the crate root:
//!   `arch::current_regs!()`): the [`Regs`] at the point of use, for tests
//!   and tools that walk their own stack.
//!
//! Every function reads memory only through [`Memory`], so a step can never
//! fault, and allocates nothing, takes no lock and makes no system call:
//! all of it runs inside signal handlers. The functions are generic or
//! `#[inline]`, so they are compiled (and optimised) with the walker.
//!
//! x86_64 is the reference implementation with every choice explained; the
//! other architectures comment only where they differ.

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

/// Registers a walk starts from, and each step produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// Program counter: the instruction that faulted or was interrupted, or
    /// a parked G's resume address.
    pub pc: usize,
    /// Stack pointer.
    pub sp: usize,
    /// Frame pointer (`rbp`, `x29`, `ebp`).
    pub fp: usize,
    /// Link register (`x30`) on aarch64; ignored elsewhere.
    pub lr: usize,
}

/// Size of a stack word.
pub const WORD: usize = core::mem::size_of::<usize>();

/// What a step may read: stack words inside the walk's readable ranges,
/// and the code of the modules known at start-up. Nothing else.
pub trait Memory {
    /// The stack word at `addr`, if it is aligned and wholly inside one of
    /// the walk's readable ranges.
    fn word(&self, addr: usize) -> Option<usize>;
    /// Whether `addr` lies in an executable segment of a known module.
    fn is_code(&self, addr: usize) -> bool;
    /// The `len` bytes at `addr`, if `[addr, addr + len)` lies inside one
    /// executable segment of a known module (mapped and readable).
    fn code(&self, addr: usize, len: usize) -> Option<&[u8]>;
}

/// The caller of a function that has not touched its stack yet, on an
/// architecture whose `call` pushes the return address (x86, x86_64): the
/// return address is at `[sp]` and the caller's `sp` one word above. Kept
/// only if it points into known code.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn caller_from_stack_top(r: &Regs, mem: &(impl Memory + ?Sized)) -> Option<Regs> {
    let ra = mem.word(r.sp)?;
    let up = Regs {
        pc: ra,
        sp: r.sp.checked_add(WORD)?,
        fp: r.fp,
        lr: ra,
    };
    (up.pc != 0 && mem.is_code(up.pc - 1)).then_some(up)
}

/// The `framehop` stand-in where it has no unwinder for the architecture
/// (i686): it knows no module, and every step fails, so the walker falls
/// back to frame pointers.
#[cfg(feature = "cfi")]
#[derive(Debug)]
pub struct NoCfi<D, P>(core::marker::PhantomData<(D, P)>);

/// [`NoCfi`]'s cache: nothing.
#[cfg(feature = "cfi")]
#[derive(Debug)]
pub struct NoCfiCache<P>(core::marker::PhantomData<P>);

#[cfg(feature = "cfi")]
impl<P> NoCfiCache<P> {
    /// An empty cache (named as `framehop`'s caches' constructor).
    pub const fn new_in() -> NoCfiCache<P> {
        NoCfiCache(core::marker::PhantomData)
    }
}

#[cfg(feature = "cfi")]
impl<D, P> NoCfi<D, P> {
    /// An unwinder without modules.
    pub const fn new() -> NoCfi<D, P> {
        NoCfi(core::marker::PhantomData)
    }
}

#[cfg(feature = "cfi")]
impl<D, P> Default for NoCfi<D, P> {
    fn default() -> Self {
        NoCfi::new()
    }
}

#[cfg(feature = "cfi")]
impl<D, P> Clone for NoCfi<D, P> {
    fn clone(&self) -> Self {
        NoCfi::new()
    }
}

#[cfg(feature = "cfi")]
impl<D: core::ops::Deref<Target = [u8]>, P> framehop::Unwinder for NoCfi<D, P> {
    type UnwindRegs = Regs;
    type Cache = NoCfiCache<P>;
    type Module = framehop::Module<D>;

    fn add_module(&mut self, _module: Self::Module) {}

    fn remove_module(&mut self, _module_avma_range_start: u64) {}

    fn max_known_code_address(&self) -> u64 {
        0
    }

    fn unwind_frame<F>(
        &self,
        _address: framehop::FrameAddress,
        _regs: &mut Regs,
        _cache: &mut NoCfiCache<P>,
        _read_stack: &mut F,
    ) -> Result<Option<u64>, framehop::Error>
    where
        F: FnMut(u64) -> Result<u64, ()>,
    {
        Err(framehop::Error::DidNotAdvance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake address space: stack words at `stack_at`, code bytes at
    /// `code_at`.
    pub(super) struct Fake<'a> {
        pub stack_at: usize,
        pub stack: &'a [usize],
        pub code_at: usize,
        pub code: &'a [u8],
    }

    impl Memory for Fake<'_> {
        fn word(&self, addr: usize) -> Option<usize> {
            let off = addr.checked_sub(self.stack_at)?;
            (off % WORD == 0).then_some(())?;
            self.stack.get(off / WORD).copied()
        }
        fn is_code(&self, addr: usize) -> bool {
            (self.code_at..self.code_at + self.code.len()).contains(&addr)
        }
        fn code(&self, addr: usize, len: usize) -> Option<&[u8]> {
            let off = addr.checked_sub(self.code_at)?;
            self.code.get(off..off.checked_add(len)?)
        }
    }

    /// Symptom: a call through a null pointer ends the trace at the null pc
    /// instead of naming the function that made the call.
    #[test]
    fn a_wild_call_is_traced_to_its_caller() {
        let code = [0x90u8; 64];
        let code_at = 0x40_0000;
        let stack = [code_at + 17, 0];
        let mem = Fake {
            stack_at: 0x7000,
            stack: &stack,
            code_at,
            code: &code,
        };
        let r = Regs {
            pc: 0,
            sp: 0x7000,
            fp: 0x7100,
            lr: code_at + 17,
        };
        let up = wild_pc_caller(&r, &mem, usize::MAX).expect("a caller");
        assert_eq!(up.pc, code_at + 17);
        assert_eq!(up.fp, 0x7100);
        assert!(up.sp == 0x7000 || up.sp == 0x7000 + WORD, "{up:?}");
        // A return address outside known code is not believed.
        let r = Regs { lr: 0x1234, ..r };
        let stack = [0x1234usize, 0];
        let mem = Fake {
            stack: &stack,
            ..mem
        };
        assert_eq!(wild_pc_caller(&r, &mem, usize::MAX), None);
    }

    #[test]
    fn the_pointer_authentication_mask_keeps_every_address_bit() {
        let max = 0x7fff_f000usize;
        let mask = ptr_auth_mask(max);
        assert_eq!(max & mask, max);
        assert_eq!(ptr_auth_mask(0) & max, max);
    }
}
