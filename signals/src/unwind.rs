//! The stack walker the signal handler uses: DWARF CFI first, frame
//! pointers as the fallback, every stack read bounds-checked.
//!
//! # Async-signal-safety
//!
//! [`walk`] runs inside signal handlers. It does not allocate, takes no lock
//! (not even one ordinary code never holds), touches no thread-local, makes
//! no system call and never formats. It reads only:
//!
//! - the unwind tables ([`init`] prepared them at start-up: a `framehop`
//!   unwinder over the in-memory `.eh_frame_hdr`/`.eh_frame` of every module
//!   [`modules::init`] listed), published through a `OnceLock` whose `get`
//!   is one atomic load;
//! - the module list (for "is this pc code?");
//! - stack words, each of which must lie wholly inside one of the
//!   caller's `readable` ranges and be pointer-aligned, or the walk stops:
//!   a bogus frame pointer or CFA ends the walk instead of faulting;
//! - an [`UnwindCache`]: the caller's own, or one claimed from a small
//!   static pool (below).
//!
//! [`init`] allocates and must run at start-up, before any signal that may
//! walk.
//!
//! # How a walk proceeds
//!
//! `out[0]` is the starting pc, exactly as given. Each further entry is a
//! *return address* as found on the stack or in `lr` — not `ra - 1`: the
//! symbolizer subtracts 1 before looking a return address up (so that a call
//! that ends a function is attributed to that function), and the CFI
//! lookups here do the same internally. (One exception: past a signal
//! frame, below, the entry is the interrupted pc itself.) Per frame:
//!
//! 1. First frame only, pc outside all known code (a call through a null
//!    or wild function pointer): take the return address the call left, at
//!    `[sp]` on x86 or in `lr` on aarch64, if it points into known code.
//! 2. x86_64, a return address at the signal trampoline (`__restore_rt`,
//!    recognised by its code bytes): the interrupted registers are in the
//!    `ucontext_t` the kernel left at sp; the walk continues from them,
//!    onto whatever stack they name (it must be in `readable` too).
//! 3. CFI (`framehop`, x86_64 and aarch64): the module's `.eh_frame` rule for
//!    the pc gives the caller's pc, sp and fp. A rule that marks the return
//!    address undefined ends the walk: that is how the G entry trampoline
//!    (arch::context) and glibc's `_start`/`clone` end their stacks.
//!    `framehop` itself uses frame pointers for a pc with no FDE.
//! 4. If CFI is unavailable (no cache free, a 32-bit target) or fails (a
//!    read outside `readable`, a CFA expression it cannot evaluate),
//!    one frame-pointer step: `fp` → `[saved fp, return address]`, the
//!    caller's sp taken as `fp + 2 words` (exact on x86; a lower bound on
//!    aarch64, where the frame record need not sit at the top of the frame).
//!
//! The walk stops at a pc of 0, at an sp that does not increase (aarch64's
//! first step may keep sp when the return address comes from `lr`; a
//! signal frame may lead to another stack), when
//! `out` is full, or at a pc outside all known code — unless the frame
//! pointer chain from that pc leads straight back into known code (a frame
//! of a module `dlopen`ed after start-up), in which case it is kept.
//!
//! Parked Gs: `arch::context::saved_regs` gives a pc that is the return
//! address of the G's `switch` call and the sp its caller has once that
//! returns; pass them as they are. `switch` always returns, so that address
//! lies inside the caller, whose CFI row there is the one in force during
//! the call.
//!
//! # Caches
//!
//! `framehop` needs exclusive use of a cache (its rule cache and the
//! preallocated DWARF evaluation context) during a walk. Several threads may
//! dump at once, and a signal may interrupt a walk on the same thread, so
//! there is no single shared cache. A caller either passes its own
//! [`UnwindCache`] (built with [`UnwindCache::new`], which allocates: one per
//! M, made when the M starts), or passes `None`, and the walk claims one of
//! [`POOL_CACHES`] caches that [`init`] made, with a single compare-exchange
//! per slot — never a wait. If every slot is taken (or `init` has not run),
//! the walk uses frame pointers only; it never blocks.
//!
//! Rejected: a global cache behind a spin lock (a signal arriving on the
//! thread that holds it would deadlock); a cache on the handler's stack
//! (made per walk, it needs allocation).
//!
//! # Per architecture
//!
//! This file has no per-architecture code: the steps that differ (steps 1
//! and 2 above, i686's prologue step, the `ucontext_t` offsets, the
//! pointer-authentication mask, which `framehop` unwinder reads CFI) are
//! in `arch::unwind`, one file per architecture, which this walker reads
//! memory for through its [`Memory`](arch::unwind::Memory) trait.
//!
//! - x86_64, aarch64: CFI through `framehop` 0.16 with
//!   `MustNotAllocateDuringUnwind`, frame-pointer fallback. On aarch64,
//!   return addresses are masked with a pointer-authentication mask derived
//!   from the highest module address.
//! - x86 (i686): `framehop` has no unwinder for it, so the same API walks
//!   frame pointers only (`ebp` → `[saved ebp, return address]`), with a
//!   prologue step for a pc on a function's first two instructions. Rust
//!   and glibc omit frame pointers by default there: build with
//!   `-C force-frame-pointers=yes` for full stacks.
//!
//! # Limits
//!
//! Modules `dlopen`ed after start-up have no CFI here (frame pointers
//! only). A module `dlclose`d after start-up must not be walked through: its
//! unwind tables would be unmapped. CFA rules that are DWARF expressions
//! reading memory are not evaluated (`framehop` does not): the one that
//! matters, glibc's `__restore_rt`, is handled by recognising its code, on
//! x86_64 only. On aarch64 the trampoline is in the vDSO (not a listed
//! module) and on i686 only frame pointers are followed, so there a walk
//! does not cross a signal frame: start from the `ucontext` (which is what
//! a handler has anyway).

use crate::modules;

/// Registers a walk starts from (defined with the per-arch steps).
pub use arch::unwind::Regs;

/// Caches [`walk`] may claim when the caller passes none.
pub const POOL_CACHES: usize = 4;

use arch::unwind::{Memory, WORD};

/// A walker's private cache. Building one allocates (tens of KiB); using it
/// in [`walk`] does not. Exclusive use during a walk is what `&mut` gives.
pub struct UnwindCache(cfi::Cache);

impl UnwindCache {
    /// A new cache. Allocates: call outside signal handlers (for instance
    /// when an M starts).
    pub fn new() -> UnwindCache {
        UnwindCache(cfi::new_cache())
    }
}

impl Default for UnwindCache {
    fn default() -> Self {
        UnwindCache::new()
    }
}

impl core::fmt::Debug for UnwindCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UnwindCache").finish_non_exhaustive()
    }
}

/// Prepares the unwinder (once): lists the modules and, where CFI is
/// supported, hands each module's in-memory `.eh_frame_hdr` and `.eh_frame`
/// to `framehop`, and makes the [`POOL_CACHES`] shared caches. Allocates:
/// call at start-up, never from a signal handler. Returns how many modules
/// have CFI (0 on frame-pointer-only targets).
pub fn init() -> usize {
    let mods = modules::init();
    cfi::init(mods)
}

/// Walks the stack from `start`, writing the pc of each frame into `out`
/// (innermost first) and returning how many were written. `out[0]` is
/// `start.pc`; later entries are return addresses, not `ra - 1` (see the
/// module docs for the rules and where the walk stops).
///
/// Every stack word read must lie wholly inside one of the `[lo, hi)` ranges
/// of `readable` (the G's stack, the M's OS stack, the signal stack); the
/// caller must name only memory that is mapped and readable for the whole
/// call. `cache`: the caller's own, or `None` to claim a shared one (frame
/// pointers only if none is free).
///
/// Async-signal-safe after [`init`]: no allocation, no lock, no system call.
pub fn walk(
    start: Regs,
    readable: &[(usize, usize)],
    cache: Option<&mut UnwindCache>,
    out: &mut [usize],
) -> usize {
    let Some(first) = out.first_mut() else {
        return 0;
    };
    *first = start.pc;
    let mem = Mem { readable };
    match cache {
        Some(c) => walk_with(start, &mem, Some(&mut c.0), out),
        None => match cfi::claim() {
            Some(mut claimed) => walk_with(start, &mem, Some(claimed.cache()), out),
            None => walk_with(start, &mem, None, out),
        },
    }
}

/// What a CFI step found.
enum Step {
    /// The caller's registers.
    Next(Regs),
    /// CFI says the stack ends here (return address undefined).
    End,
    /// No unwinder, or the rule could not be applied: try frame pointers.
    Failed,
}

/// A frame during the walk.
#[derive(Clone, Copy, Debug)]
struct Frame {
    regs: Regs,
    /// `regs.pc` is the exact instruction (the start, or the pc a signal
    /// interrupted), not a return address: look it up as is, and it may
    /// be a leaf whose return address is still in `lr` (aarch64) or at
    /// `[sp]`.
    exact: bool,
}

impl Frame {
    /// The address whose code and CFI describe the frame: a return address
    /// minus 1, so that a call ending a function is attributed to it.
    fn lookup(&self) -> usize {
        if self.exact {
            self.regs.pc
        } else {
            self.regs.pc.wrapping_sub(1)
        }
    }
}

/// [`walk`], also writing each frame's stack pointer into `sps` (the sp
/// the frame had when it called the next inner one; for the first frame,
/// `start.sp`). Walks at most `min(out.len(), sps.len())` frames.
pub fn walk_with_sps(
    start: Regs,
    readable: &[(usize, usize)],
    cache: Option<&mut UnwindCache>,
    out: &mut [usize],
    sps: &mut [usize],
) -> usize {
    let max = out.len().min(sps.len());
    let (out, sps) = (&mut out[..max], &mut sps[..max]);
    let Some(first) = out.first_mut() else {
        return 0;
    };
    *first = start.pc;
    sps[0] = start.sp;
    let mem = Mem { readable };
    match cache {
        Some(c) => walk_frames(start, &mem, Some(&mut c.0), out, Some(sps)),
        None => match cfi::claim() {
            Some(mut claimed) => walk_frames(start, &mem, Some(claimed.cache()), out, Some(sps)),
            None => walk_frames(start, &mem, None, out, Some(sps)),
        },
    }
}

/// The walk proper; `out` is not empty and `out[0]` is written.
fn walk_with(
    start: Regs,
    mem: &Mem<'_>,
    cache: Option<&mut cfi::Cache>,
    out: &mut [usize],
) -> usize {
    walk_frames(start, mem, cache, out, None)
}

/// [`walk_with`], recording sps too when given (`sps.len() >= out.len()`).
fn walk_frames(
    start: Regs,
    mem: &Mem<'_>,
    mut cache: Option<&mut cfi::Cache>,
    out: &mut [usize],
    mut sps: Option<&mut [usize]>,
) -> usize {
    let mut cur = Frame {
        regs: start,
        exact: true,
    };
    let mut n = 1;
    while n < out.len() {
        let Some(next) = step(&cur, mem, cache.as_deref_mut()) else {
            break;
        };
        if next.regs.pc == 0 || !advanced(&cur, &next) {
            break;
        }
        if !is_code(next.lookup()) && !leads_to_code(&next, mem) {
            // Code no module listed at start-up owns, or a bogus value.
            break;
        }
        out[n] = next.regs.pc;
        if let Some(sps) = sps.as_deref_mut() {
            sps[n] = next.regs.sp;
        }
        n += 1;
        cur = next;
    }
    n
}

/// One frame up from `cur`, or `None` if the stack ends or cannot be read.
fn step(cur: &Frame, mem: &Mem<'_>, cache: Option<&mut cfi::Cache>) -> Option<Frame> {
    let known = is_code(cur.lookup());
    if cur.exact
        && !known
        && let Some(next) = wild_pc_step(&cur.regs, mem)
    {
        return Some(next);
    }
    if !cur.exact
        && known
        && let Some(regs) = arch::unwind::sigreturn_caller(&cur.regs, mem)
    {
        // The interrupted instruction: exact, maybe on another stack.
        return Some(Frame { regs, exact: true });
    }
    if known && let Some(cache) = cache {
        match cfi::step(&cur.regs, cur.exact, mem, cache) {
            Step::Next(regs) => return Some(Frame { regs, exact: false }),
            Step::End => return None,
            Step::Failed => {}
        }
    }
    if cur.exact
        && known
        && let Some(regs) = arch::unwind::prologue_caller(&cur.regs, mem)
    {
        return Some(Frame { regs, exact: false });
    }
    fp_step(&cur.regs, mem)
}

/// For a frame whose pc is outside known code: whether its caller is
/// clearly in known code (a frame of a module `dlopen`ed after start-up
/// that keeps frame pointers).
fn leads_to_code(f: &Frame, mem: &Mem<'_>) -> bool {
    if f.exact && wild_pc_step(&f.regs, mem).is_some() {
        return true;
    }
    fp_step(&f.regs, mem)
        .is_some_and(|up| up.regs.pc != 0 && up.regs.sp > f.regs.sp && is_code(up.lookup()))
}

/// An exact frame with a pc outside known code: the state right after a
/// call that jumped there (through a null or corrupt function pointer).
fn wild_pc_step(cur: &Regs, mem: &Mem<'_>) -> Option<Frame> {
    arch::unwind::wild_pc_caller(cur, mem, cfi::ptr_auth_mask())
        .map(|regs| Frame { regs, exact: false })
}

/// One frame-pointer step: `fp` points at `[caller's fp, return address]`.
fn fp_step(cur: &Regs, mem: &Mem<'_>) -> Option<Frame> {
    let fp = cur.fp;
    // The frame record lives on the live stack, at or above sp.
    if fp == 0 || fp < cur.sp {
        return None;
    }
    let saved_fp = mem.word(fp)?;
    let ra = strip_ptr_auth(mem.word(fp.checked_add(WORD)?)?);
    let sp = fp.checked_add(2 * WORD)?;
    Some(Frame {
        regs: Regs {
            pc: ra,
            sp,
            fp: saved_fp,
            lr: ra,
        },
        exact: false,
    })
}

/// Whether `next` is further up the stack than `cur`.
fn advanced(cur: &Frame, next: &Frame) -> bool {
    // Past a signal frame, sp may be on another stack: the handler's
    // ran on the signal stack.
    next.exact
        || next.regs.sp > cur.regs.sp
        // A leaf (or a function still in its prologue) that returns
        // through a link register has not touched sp.
        || (arch::unwind::LEAF_RETURNS_THROUGH_LR
            && cur.exact
            && next.regs.sp == cur.regs.sp
            && next.regs.pc != cur.regs.pc)
}

/// Whether `addr` lies in an executable segment of a module listed at
/// start-up. Allocation-free.
fn is_code(addr: usize) -> bool {
    modules::modules()
        .iter()
        .any(|m| m.text.iter().any(|&(lo, hi)| addr >= lo && addr < hi))
}

/// Removes pointer-authentication bits from a return address (all ones
/// where the architecture has none: `arch::unwind::ptr_auth_mask`).
fn strip_ptr_auth(ra: usize) -> usize {
    ra & cfi::ptr_auth_mask()
}

/// The readable ranges a walk may load stack words from.
struct Mem<'a> {
    readable: &'a [(usize, usize)],
}

impl arch::unwind::Memory for Mem<'_> {
    /// The word at `addr`, if it is aligned and wholly inside one range.
    fn word(&self, addr: usize) -> Option<usize> {
        if !addr.is_multiple_of(WORD) {
            return None;
        }
        let end = addr.checked_add(WORD)?;
        if !self
            .readable
            .iter()
            .any(|&(lo, hi)| addr >= lo && end <= hi)
        {
            return None;
        }
        // SAFETY: `walk`'s contract: every range in `readable` is mapped and
        // readable for the whole walk, and [addr, addr + WORD) lies inside
        // one of them and is aligned. A volatile read because the memory may
        // be another thread's stack (a parked G's, or a stopped M's).
        Some(unsafe { core::ptr::read_volatile(addr as *const usize) })
    }

    fn is_code(&self, addr: usize) -> bool {
        is_code(addr)
    }

    fn code(&self, addr: usize, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len)?;
        let inside = modules::modules()
            .iter()
            .any(|m| m.text.iter().any(|&(lo, hi)| addr >= lo && end <= hi));
        // SAFETY: [addr, end) lies inside one executable PT_LOAD segment of
        // a module listed at start-up, mapped for the process's life (a
        // module unloaded later is a documented limit) and readable: the
        // supported targets map ELF code readable and executable.
        inside.then(|| unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}

mod cfi {
    //! CFI through `framehop`, with the architecture's unwinder
    //! (`arch::unwind::CfiUnwinder`). Where `framehop` has none
    //! (`arch::unwind::CFI` is false: i686), [`init`] prepares nothing,
    //! [`claim`] finds no cache and every step fails: frame pointers only.

    use super::{Mem, Regs, Step};
    use crate::modules::Module;
    use arch::unwind::{Memory, cfi_regs, from_cfi_regs};
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};
    use framehop::{
        ExplicitModuleSectionInfo, FrameAddress, MustNotAllocateDuringUnwind, Unwinder,
    };
    use std::sync::OnceLock;

    type Native = arch::unwind::CfiUnwinder<&'static [u8], MustNotAllocateDuringUnwind>;
    pub(super) type Cache = arch::unwind::CfiCache<MustNotAllocateDuringUnwind>;

    /// What [`super::init`] prepares for the handler.
    ///
    /// # Safety
    ///
    /// Immutable once published, except each `pool` slot's cache, which only
    /// the holder of that slot's `busy` flag touches (see [`Claimed`]).
    struct State {
        unwinder: Native,
        /// Modules whose CFI the unwinder has.
        n_cfi: usize,
        /// Mask applied to return addresses (`arch::unwind::ptr_auth_mask`).
        ptr_auth_mask: usize,
        pool: [Slot; super::POOL_CACHES],
    }

    struct Slot {
        busy: AtomicBool,
        cache: UnsafeCell<Cache>,
    }

    // SAFETY: a slot's cache is reached only through a `Claimed`, which exists
    // only while its holder has swapped `busy` from false to true; so at most
    // one thread (or one signal-handler activation) uses it at a time.
    unsafe impl Sync for Slot {}

    static STATE: OnceLock<State> = OnceLock::new();

    pub(super) fn init(mods: &'static [Module]) -> usize {
        if !arch::unwind::CFI {
            return 0;
        }
        let state = STATE.get_or_init(|| {
            let mut unwinder = Native::new();
            let mut n_cfi = 0;
            for m in mods {
                if let Some(module) = framehop_module(m) {
                    unwinder.add_module(module);
                    n_cfi += 1;
                }
            }
            let ptr_auth_mask =
                arch::unwind::ptr_auth_mask(unwinder.max_known_code_address() as usize);
            let pool = core::array::from_fn(|_| Slot {
                busy: AtomicBool::new(false),
                cache: UnsafeCell::new(new_cache()),
            });
            State {
                unwinder,
                n_cfi,
                ptr_auth_mask,
                pool,
            }
        });
        state.n_cfi
    }

    pub(super) fn new_cache() -> Cache {
        Cache::new_in()
    }

    pub(super) fn ptr_auth_mask() -> usize {
        STATE.get().map_or(usize::MAX, |s| s.ptr_auth_mask)
    }

    /// A pool cache held until drop.
    pub(super) struct Claimed(&'static Slot);

    impl Claimed {
        pub(super) fn cache(&mut self) -> &mut Cache {
            // SAFETY: `State`'s invariant: we hold the slot's busy flag (set
            // by `claim`, cleared only by our drop), so this is the only
            // reference to the cache; `&mut self` keeps it unique here.
            unsafe { &mut *self.0.cache.get() }
        }
    }

    impl Drop for Claimed {
        fn drop(&mut self) {
            // Release: our writes to the cache happen before the next
            // claimer's Acquire.
            self.0.busy.store(false, Ordering::Release);
        }
    }

    /// Claims a free pool cache without waiting; `None` if all are taken
    /// or [`super::init`] has not run.
    pub(super) fn claim() -> Option<Claimed> {
        let state = STATE.get()?;
        state
            .pool
            .iter()
            .find(|s| {
                s.busy
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            })
            .map(Claimed)
    }

    pub(super) fn step(cur: &Regs, first: bool, mem: &Mem<'_>, cache: &mut Cache) -> Step {
        let Some(state) = STATE.get() else {
            return Step::Failed;
        };
        // Keep framehop's `sp - 8` arithmetic away from 0. An sp outside
        // the readable ranges is allowed: after a G stack overflow sp sits
        // in the guard page while the return address (at the CFA) is still
        // on the stack; every read goes through `mem.word`, bounds-checked.
        if cur.sp < 4096 {
            return Step::Failed;
        }
        let address = if first {
            FrameAddress::from_instruction_pointer(cur.pc as u64)
        } else {
            match FrameAddress::from_return_address(cur.pc as u64) {
                Some(a) => a,
                None => return Step::End,
            }
        };
        let mut read = |addr: u64| mem.word(addr as usize).map(|w| w as u64).ok_or(());
        let mut regs = cfi_regs(cur, state.ptr_auth_mask);
        match state
            .unwinder
            .unwind_frame(address, &mut regs, cache, &mut read)
        {
            Ok(Some(ra)) => Step::Next(from_cfi_regs(&regs, ra as usize)),
            Ok(None) => Step::End,
            Err(_) => Step::Failed,
        }
    }

    /// The module as framehop sees it: its address range, load bias, and
    /// its unwind sections in memory. `None` without a usable
    /// `.eh_frame_hdr` (framehop then uses frame pointers for its code).
    fn framehop_module(m: &'static Module) -> Option<framehop::Module<&'static [u8]>> {
        let (hdr_addr, hdr_len) = m.eh_frame_hdr?;
        let (eh_addr, eh_len) = eh_frame_of(m)?;
        // SAFETY: PT_GNU_EH_FRAME lies inside a PT_LOAD segment of a module
        // the loader mapped before start-up; it stays mapped while the
        // module is loaded (modules unloaded later are a documented limit).
        let hdr: &'static [u8] =
            unsafe { core::slice::from_raw_parts(hdr_addr as *const u8, hdr_len) };
        // SAFETY: `eh_frame_of` checked that [eh_addr, eh_addr + eh_len)
        // lies inside the module and ends at the end of its last FDE, all
        // inside the `.eh_frame` section the loader mapped.
        let eh_frame: &'static [u8] =
            unsafe { core::slice::from_raw_parts(eh_addr as *const u8, eh_len) };
        let svma = |lo: usize, len: usize| (lo - m.base) as u64..(lo - m.base + len) as u64;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: m.text.first().map(|&(lo, hi)| svma(lo, hi - lo)),
            eh_frame_svma: Some(svma(eh_addr, eh_len)),
            eh_frame: Some(eh_frame),
            eh_frame_hdr_svma: Some(svma(hdr_addr, hdr_len)),
            eh_frame_hdr: Some(hdr),
            ..Default::default()
        };
        Some(framehop::Module::new(
            m.path.clone(),
            m.start as u64..m.end as u64,
            m.base as u64,
            info,
        ))
    }

    /// `.eh_frame` of a module, in memory: it starts where the header's
    /// `eh_frame_ptr` says and ends with the last FDE its search table lists.
    fn eh_frame_of(m: &Module) -> Option<(usize, usize)> {
        let (hdr_addr, hdr_len) = m.eh_frame_hdr?;
        if hdr_addr < m.start || hdr_addr.checked_add(hdr_len)? > m.end {
            return None;
        }
        // SAFETY: as in `framehop_module`: PT_GNU_EH_FRAME is mapped.
        let hdr = unsafe { core::slice::from_raw_parts(hdr_addr as *const u8, hdr_len) };
        let parsed = super::eh_frame_hdr::parse(hdr, hdr_addr, m.base)?;
        let last_fde = parsed.last_fde?;
        let inside =
            |a: usize, len: usize| a >= m.start && a.checked_add(len).is_some_and(|e| e <= m.end);
        if !inside(parsed.eh_frame, 0) || last_fde < parsed.eh_frame || !inside(last_fde, 12) {
            return None;
        }
        // SAFETY: the search table points at this FDE inside the module's
        // `.eh_frame`; its length field (4 bytes, plus 8 for the 64-bit
        // form) is mapped, checked just above to lie inside the module.
        let len32 = unsafe { core::ptr::read_unaligned(last_fde as *const u32) };
        let end = if len32 == u32::MAX {
            // SAFETY: as above; the 64-bit length follows the escape.
            let len64 = unsafe { core::ptr::read_unaligned((last_fde + 4) as *const u64) };
            last_fde
                .checked_add(12)?
                .checked_add(usize::try_from(len64).ok()?)?
        } else {
            last_fde.checked_add(4)?.checked_add(len32 as usize)?
        };
        if end > m.end {
            return None;
        }
        Some((parsed.eh_frame, end - parsed.eh_frame))
    }
}

mod eh_frame_hdr {
    //! The `.eh_frame_hdr` header (LSB 5.0 "Exception Frame Header"):
    //!
    //! ```text
    //! u8  version (1)
    //! u8  eh_frame_ptr_enc     DW_EH_PE_* encoding of the next field
    //! u8  fde_count_enc
    //! u8  table_enc            of each search-table field
    //! *   eh_frame_ptr         address of .eh_frame
    //! *   fde_count
    //! *   table[fde_count]     (initial location, FDE address), sorted
    //! ```
    //!
    //! Linkers write `eh_frame_ptr` as `pcrel|sdata4` and the table as
    //! `datarel|sdata4` (relative to the header's start); other encodings
    //! are decoded too where they make sense.

    /// What the header says.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) struct Parsed {
        /// Run-time address of `.eh_frame`.
        pub eh_frame: usize,
        /// Run-time address of the FDE at the highest address, if the
        /// search table is present (`datarel|sdata4`).
        pub last_fde: Option<usize>,
    }

    const OMIT: u8 = 0xff;
    const INDIRECT: u8 = 0x80;
    const PCREL: u8 = 0x10;
    const DATAREL: u8 = 0x30;
    const TABLE_DATAREL_SDATA4: u8 = 0x3b;

    /// Parses the header at run-time address `addr` of a module with load
    /// bias `base`.
    pub(super) fn parse(hdr: &[u8], addr: usize, base: usize) -> Option<Parsed> {
        if hdr.len() < 4 || hdr[0] != 1 {
            return None;
        }
        let (ptr_enc, count_enc, table_enc) = (hdr[1], hdr[2], hdr[3]);
        let mut pos = 4;
        let eh_frame = read(hdr, &mut pos, ptr_enc, addr, base)?;
        let count = read(hdr, &mut pos, count_enc & 0x0f, addr, 0);
        let last_fde = match count {
            Some(count) if count > 0 && table_enc == TABLE_DATAREL_SDATA4 => {
                let table = hdr.get(pos..pos.checked_add(count.checked_mul(8)?)?)?;
                table
                    .chunks_exact(8)
                    .map(|e| {
                        addr.wrapping_add(
                            i32::from_le_bytes([e[4], e[5], e[6], e[7]]) as isize as usize
                        )
                    })
                    .max()
            }
            _ => None,
        };
        Some(Parsed { eh_frame, last_fde })
    }

    /// Reads one `DW_EH_PE_*`-encoded value at `*pos` and applies its base:
    /// the field's own address (pcrel), the header (datarel) or the load
    /// bias (absolute values are link-time addresses).
    fn read(hdr: &[u8], pos: &mut usize, enc: u8, addr: usize, base: usize) -> Option<usize> {
        if enc == OMIT || enc & INDIRECT != 0 {
            return None;
        }
        let field = addr.wrapping_add(*pos);
        let mut take = |n: usize| -> Option<u64> {
            let bytes = hdr.get(*pos..pos.checked_add(n)?)?;
            *pos += n;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(bytes);
            Some(u64::from_le_bytes(buf))
        };
        let sext = |v: u64, bits: u32| (((v << (64 - bits)) as i64) >> (64 - bits)) as u64;
        let raw: u64 = match enc & 0x0f {
            0x00 => take(super::WORD)?,
            0x01 => leb128(hdr, pos, false)?,
            0x02 => take(2)?,
            0x03 => take(4)?,
            0x04 => take(8)?,
            0x09 => leb128(hdr, pos, true)?,
            0x0a => sext(take(2)?, 16),
            0x0b => sext(take(4)?, 32),
            0x0c => take(8)?,
            _ => return None,
        };
        let raw = raw as usize;
        match enc & 0x70 {
            0x00 => Some(raw.wrapping_add(base)),
            PCREL => Some(field.wrapping_add(raw)),
            DATAREL => Some(addr.wrapping_add(raw)),
            _ => None,
        }
    }

    fn leb128(hdr: &[u8], pos: &mut usize, signed: bool) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = *hdr.get(*pos)?;
            *pos += 1;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if signed && shift < 64 && b & 0x40 != 0 {
                    v |= u64::MAX << shift;
                }
                return Some(v);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn standard_encodings_decode_to_run_time_addresses() {
            // version 1, pcrel|sdata4, udata4, datarel|sdata4; eh_frame_ptr
            // = +0x100 from the field at 0x1004; 2 entries whose FDEs are at
            // hdr + 0x120 and hdr + 0x110.
            let mut h = vec![1u8, 0x1b, 0x03, 0x3b];
            h.extend_from_slice(&0x100i32.to_le_bytes());
            h.extend_from_slice(&2u32.to_le_bytes());
            for (loc, fde) in [(-0x800i32, 0x120i32), (-0x700, 0x110)] {
                h.extend_from_slice(&loc.to_le_bytes());
                h.extend_from_slice(&fde.to_le_bytes());
            }
            let p = parse(&h, 0x1000, 0x0).unwrap();
            assert_eq!(
                p,
                Parsed {
                    eh_frame: 0x1104,
                    last_fde: Some(0x1120)
                }
            );
        }

        #[test]
        fn absolute_pointers_are_rebased_and_missing_tables_tolerated() {
            let mut h = vec![1u8, 0x04, OMIT, OMIT];
            h.extend_from_slice(&0x2000u64.to_le_bytes());
            let p = parse(&h, 0x5000, 0x40_0000).unwrap();
            assert_eq!(
                p,
                Parsed {
                    eh_frame: 0x40_2000,
                    last_fde: None
                }
            );
            assert_eq!(parse(&[2, 0x1b, 0x03, 0x3b], 0, 0), None, "unknown version");
            assert_eq!(parse(&[1, 0x1b, 0x03], 0, 0), None, "truncated");
            assert_eq!(
                parse(&[1, 0x9b, 0x03, 0x3b, 0, 0, 0, 0], 0, 0),
                None,
                "indirect"
            );
        }

        #[test]
        fn leb128_signs() {
            let mut pos = 0;
            assert_eq!(leb128(&[0xe5, 0x8e, 0x26], &mut pos, false), Some(624_485));
            pos = 0;
            assert_eq!(leb128(&[0x7f], &mut pos, true), Some(u64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outside_the_readable_ranges_or_misaligned_are_refused() {
        let words = [1usize, 2, 3, 4];
        let lo = words.as_ptr() as usize;
        let mem = Mem {
            readable: &[(lo, lo + 3 * WORD)],
        };
        assert_eq!(mem.word(lo), Some(1));
        assert_eq!(mem.word(lo + 2 * WORD), Some(3));
        assert_eq!(mem.word(lo + 3 * WORD), None, "past the end");
        assert_eq!(mem.word(lo - WORD), None, "before the start");
        assert_eq!(mem.word(lo + 1), None, "misaligned");
        assert_eq!(mem.word(usize::MAX - 3), None, "wraps");
    }

    #[test]
    fn a_fake_frame_pointer_chain_is_followed_within_bounds() {
        init();
        let code = walk as *const () as usize + 1;
        // Two frame records: [fp0] -> [fp1] -> 0.
        let mut stack = Box::new([0usize; 8]);
        let base = stack.as_mut_ptr() as usize;
        stack[2] = base + 4 * WORD; // fp0: caller's fp
        stack[3] = code; // fp0: return address
        stack[4] = 0; // fp1: end of chain
        stack[5] = code + 1;
        core::hint::black_box(&mut stack);
        let start = Regs {
            pc: code,
            sp: base,
            fp: base + 2 * WORD,
            lr: code,
        };
        let mut out = [0usize; 8];
        let n = fp_only_walk(start, &[(base, base + 8 * WORD)], &mut out);
        assert_eq!(&out[..n], &[code, code, code + 1]);
        // The same chain with the second record outside `readable`.
        let n = fp_only_walk(start, &[(base, base + 4 * WORD)], &mut out);
        assert_eq!(&out[..n], &[code, code]);
    }

    fn fp_only_walk(start: Regs, readable: &[(usize, usize)], out: &mut [usize]) -> usize {
        out[0] = start.pc;
        walk_with(start, &Mem { readable }, None, out)
    }
}
