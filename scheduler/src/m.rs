//! M: an OS thread that runs Gs.
//!
//! An M runs its scheduler loop on its own thread stack (its `g0` context),
//! switches to a G to run it, and gets control back when the G parks, yields
//! or exits (unless the G switches straight to the next G, see
//! `engine/`). It needs a P to run Gs. Ms are never freed: they live in
//! [`ALLMS`], which a signal handler can walk.

use crate::g::{G, GRef};
use crate::lock_rank::{Rank, RankedMutex};
use crate::p::P;
use crate::registry::Registry;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use parking_lot::Condvar;
use std::time::Instant;

/// Every M ever created. Append-only; walkable from a signal handler.
pub static ALLMS: Registry<M> = Registry::new();

/// Lifecycle of an M.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MStatus {
    /// Created, its thread not yet started.
    New = 0,
    /// Its thread runs the scheduler loop or a G.
    Running = 1,
    /// Asleep on its note in the idle list (holds no P).
    Idle = 2,
    /// Its thread has exited; the struct stays in [`ALLMS`].
    Dead = 3,
    /// An extra M on the extra list: it has no OS thread until a foreign
    /// thread takes it with `needm`.
    Extra = 4,
}

/// A one-shot wake-up: Go's `note`. One sleeper (the M itself), any number
/// of wakers; a wake-up before the sleep is not lost.
#[derive(Debug)]
pub struct Note {
    set: RankedMutex<bool>,
    cv: Condvar,
}

impl Default for Note {
    fn default() -> Note {
        Note {
            set: RankedMutex::new(Rank::Note, false),
            cv: Condvar::new(),
        }
    }
}

impl Note {
    /// Sets the note and wakes the sleeper.
    pub fn wakeup(&self) {
        let mut s = self.set.lock();
        *s = true;
        self.cv.notify_one();
    }

    /// Sleeps until woken or until `deadline`; clears the note. Returns
    /// whether it was woken.
    pub fn sleep(&self, deadline: Option<Instant>) -> bool {
        let mut s = self.set.lock();
        while !*s {
            match deadline {
                Some(d) => {
                    if s.wait_until(&self.cv, d) {
                        break;
                    }
                }
                None => s.wait(&self.cv),
            }
        }
        core::mem::replace(&mut *s, false)
    }
}

/// How a parked G releases its waker: `unlock(data)` (see `engine::park`).
pub(crate) type Unlock = (unsafe fn(*mut ()) -> bool, *mut ());

/// Work an M must finish for the context it just left, run by whatever runs
/// next on the M once the switch has saved the old context (Go does the
/// same with `mcall` + `park_m`): until then another M must not see the G.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum Pending {
    /// Nothing to do.
    #[default]
    None,
    /// The G yielded: make it runnable at the back of the local queue, or
    /// of the global queue if the flag is set.
    Yield(GRef, bool),
    /// The G yielded into its P's `runnext` for the G that was there
    /// ([`RunQueue::swap_begin`](crate::runq::RunQueue::swap_begin)): mark
    /// it runnable and end the hand-shake that kept thieves off it.
    Swapped(GRef),
    /// The G parks; then run `unlock(data)`, and if it returns false, make
    /// the G runnable again at once (the wait was cancelled).
    Park(GRef, Option<Unlock>),
    /// The G finished: recycle its stack and struct.
    Exit(GRef),
    /// The G returned from a syscall and found no P: queue it on the global
    /// queue (this M then sleeps).
    SyscallNoP(GRef),
}

/// An OS thread that runs Gs. Fields marked *owner* are touched only by the
/// M's own thread.
///
/// Aligned to 128 bytes (a cache line and the adjacent line the prefetcher
/// pulls with it): Ms live side by side in one array, and each is written
/// all the time by its own thread, so unaligned neighbours would share lines.
#[repr(align(128))]
pub struct M {
    /// Index in [`ALLMS`]; also the M's id (`m=N` in dumps).
    pub id: usize,
    status: AtomicU32,
    /// Saved scheduler context (the thread's own stack) while a G runs.
    pub(crate) g0_sp: AtomicUsize,
    /// The G running on this M, or null while on `g0`.
    pub(crate) curg: AtomicPtr<G>,
    /// The P this M holds, or null.
    pub(crate) p: AtomicPtr<P>,
    /// The P handed over by whoever woke this M.
    pub(crate) nextp: AtomicPtr<P>,
    /// Whether this M is spinning (looking for work, counted in
    /// `Sched::nmspinning`).
    pub(crate) spinning: AtomicBool,
    /// Kernel thread id (0 until the thread starts).
    tid: AtomicI32,
    /// The G locked to this M by `lock_os_thread`, or null.
    pub(crate) locked_g: AtomicPtr<G>,
    /// The thread should exit once back on `g0` (its locked G exited).
    pub(crate) exit_requested: AtomicBool,
    /// Whether this is an extra M (for foreign threads; see `extram.rs`).
    pub extra: bool,
    /// Next M on the extra list (only while on it).
    pub(crate) schedlink: AtomicPtr<M>,
    /// Extra Ms: the G that runs callbacks, locked to this M.
    pub(crate) cb_g: AtomicPtr<G>,
    /// Set by `sysmon` when it retook the P this M lent to a G's user code:
    /// the G yields at its next `preempt_point` (see `preempt.rs`).
    pub(crate) preempt: AtomicBool,
    /// Whether sysmon lowered this thread's priority while its G ran
    /// without a P: see `Demotion` for the states and who writes
    /// them.
    pub(crate) demotion: core::sync::atomic::AtomicU8,
    /// The nice value the thread had before sysmon demoted it.
    pub(crate) demoted_from: core::sync::atomic::AtomicI32,
    /// When this M's G last came back to the runtime after a retake
    /// (runtime clock; `preempt::lost_p`).
    pub(crate) returned_at: core::sync::atomic::AtomicU64,
    /// The P left behind by a syscall (or lent to a G's user code, see
    /// `engine/lend.rs`) and the state word it was left in.
    pub(crate) oldp: AtomicPtr<P>,
    pub(crate) oldp_word: core::sync::atomic::AtomicU64,
    /// This M's claim on the P it lent (`P::take_back_lent`).
    pub(crate) claim: crate::p::LentClaim,
    /// A word owned by the crash-tracing layer (the signals crate): its
    /// per-M state (signal stack, dump progress), set in the M start hook.
    /// The scheduler never reads it.
    pub sig_slot: AtomicPtr<()>,
    /// Owner: see [`Pending`].
    pending: Cell<Pending>,
    /// Owner: random state for victim selection.
    rand: Cell<u32>,
    /// Where the M sleeps when idle.
    pub(crate) note: Note,
    /// Owner: padding to keep the hot fields of neighbouring Ms apart.
    _owner: UnsafeCell<()>,
}

// SAFETY: the `Cell` fields are *owner* fields, touched only by the M's own
// thread (or before it starts, by its creator); everything else is atomic or
// internally synchronised.
unsafe impl Sync for M {}
// SAFETY: as above; Ms are shared as `&'static M`.
unsafe impl Send for M {}

impl core::fmt::Debug for M {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("M")
            .field("id", &self.id)
            .field("tid", &self.tid())
            .finish()
    }
}

impl M {
    pub(crate) fn new(id: usize) -> M {
        M::new_kind(id, false)
    }

    pub(crate) fn new_kind(id: usize, extra: bool) -> M {
        M {
            id,
            extra,
            schedlink: AtomicPtr::new(core::ptr::null_mut()),
            cb_g: AtomicPtr::new(core::ptr::null_mut()),
            oldp: AtomicPtr::new(core::ptr::null_mut()),
            oldp_word: core::sync::atomic::AtomicU64::new(0),
            claim: crate::p::LentClaim::default(),
            sig_slot: AtomicPtr::new(core::ptr::null_mut()),
            status: AtomicU32::new(MStatus::New as u32),
            g0_sp: AtomicUsize::new(0),
            curg: AtomicPtr::new(core::ptr::null_mut()),
            p: AtomicPtr::new(core::ptr::null_mut()),
            nextp: AtomicPtr::new(core::ptr::null_mut()),
            spinning: AtomicBool::new(false),
            tid: AtomicI32::new(0),
            locked_g: AtomicPtr::new(core::ptr::null_mut()),
            exit_requested: AtomicBool::new(false),
            preempt: AtomicBool::new(false),
            demotion: core::sync::atomic::AtomicU8::new(0),
            demoted_from: core::sync::atomic::AtomicI32::new(0),
            returned_at: core::sync::atomic::AtomicU64::new(0),
            pending: Cell::new(Pending::None),
            rand: Cell::new((id as u32).wrapping_mul(0x9e37_79b9) | 1),
            note: Note::default(),
            _owner: UnsafeCell::new(()),
        }
    }

    /// Current status.
    pub fn status(&self) -> MStatus {
        match self.status.load(Ordering::Acquire) {
            1 => MStatus::Running,
            2 => MStatus::Idle,
            3 => MStatus::Dead,
            4 => MStatus::Extra,
            _ => MStatus::New,
        }
    }

    pub(crate) fn set_status(&self, s: MStatus) {
        self.status.store(s as u32, Ordering::Release);
    }

    /// Kernel thread id, 0 before the thread started.
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    pub(crate) fn clear_tid(&self) {
        self.tid.store(0, Ordering::Relaxed);
    }

    pub(crate) fn set_tid(&self) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// The G running on this M, if any.
    pub fn curg(&self) -> Option<GRef> {
        // SAFETY: curg holds null or a pointer from GRef::as_ptr.
        unsafe { GRef::from_ptr(self.curg.load(Ordering::Acquire)) }
    }

    /// The P this M holds, if any.
    pub(crate) fn p(&self) -> Option<&'static P> {
        // SAFETY: Ps live for the whole process once created.
        unsafe { self.p.load(Ordering::Relaxed).as_ref() }
    }

    /// The G locked to this M, if any.
    pub fn locked_g(&self) -> Option<GRef> {
        // SAFETY: null or from GRef::as_ptr.
        unsafe { GRef::from_ptr(self.locked_g.load(Ordering::Relaxed)) }
    }

    /// Owner only.
    pub(crate) fn set_pending(&self, p: Pending) {
        debug_assert!(
            matches!(self.pending.get(), Pending::None),
            "set_pending: pending work lost"
        );
        self.pending.set(p);
    }

    /// Owner only.
    pub(crate) fn take_pending(&self) -> Pending {
        self.pending.replace(Pending::None)
    }

    /// Owner only: takes the pending work if it is [`Pending::Swapped`]
    /// (the hot case, without copying the whole value out first).
    #[inline]
    pub(crate) fn take_swapped(&self) -> Option<GRef> {
        // SAFETY: owner only, and no reference into the cell outlives this.
        let pending = unsafe { &mut *self.pending.as_ptr() };
        match *pending {
            Pending::Swapped(g) => {
                *pending = Pending::None;
                Some(g)
            }
            _ => None,
        }
    }

    /// Owner only: a fast xorshift for victim selection.
    pub(crate) fn fastrand(&self) -> u32 {
        let mut x = self.rand.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rand.set(x);
        x
    }
}

/// A handle to an M.
pub type MRef = &'static M;

thread_local! {
    /// The M this thread is, or null on a thread the runtime did not start.
    static CURRENT_M: Cell<*const M> = const { Cell::new(core::ptr::null()) };
}

/// The M of the calling thread.
///
/// A G can move to another thread at every park or yield, and the compiler
/// assumes a thread-local's address is constant inside one function. So the
/// lookup lives in its own never-inlined function and reads the slot with a
/// volatile load: a caller that parks between two calls gets two fresh
/// answers.
#[inline(never)]
pub fn current_m() -> Option<MRef> {
    let p = CURRENT_M.with(|c| {
        // SAFETY: `c.as_ptr()` is valid for reads for the thread's lifetime;
        // the volatile read keeps the compiler from reusing an earlier value.
        unsafe { core::ptr::read_volatile(c.as_ptr()) }
    });
    // SAFETY: set only to a 'static M by `set_current_m`.
    unsafe { p.as_ref() }
}

pub(crate) fn set_current_m(m: Option<MRef>) {
    CURRENT_M.with(|c| c.set(m.map_or(core::ptr::null(), |m| m as *const M)));
}

/// The G running the caller, if the caller runs on a G.
#[inline]
pub fn current_g() -> Option<GRef> {
    current_m().and_then(|m| m.curg())
}

/// Hooks run on every M's thread when it starts and before it exits (the
/// signals crate installs a per-M alternate signal stack here). Set once.
#[derive(Clone, Copy, Debug)]
pub struct MHooks {
    /// Runs first on a new M's thread.
    pub start: fn(&M),
    /// Runs last before the thread exits.
    pub exit: fn(&M),
}

static M_HOOKS: std::sync::OnceLock<MHooks> = std::sync::OnceLock::new();

/// Installs the M start/exit hooks. Returns false if hooks were already set.
/// Ms started earlier do not run them.
pub fn set_m_hooks(h: MHooks) -> bool {
    M_HOOKS.set(h).is_ok()
}

pub(crate) fn m_hooks() -> Option<&'static MHooks> {
    M_HOOKS.get()
}

/// Whether an M's thread runs at lowered priority ([`M::demotion`]): a G
/// that lost its P and goes on running its own code must not take CPU from
/// the Gs that hold Ps, or `GORT_MAXPROCS` would no longer bound the Gs
/// running at once. Only sysmon and the M itself (in `lost_p` (`engine/lend.rs`), at the
/// G's first runtime call after the retake) write it; neither is a hot
/// path.
///
/// | state | meaning | next |
/// |---|---|---|
/// | `None` | normal; no retake since the M's last return | sysmon → `Armed` just before it retakes the M's lent P (back to `None` if the retake fails) |
/// | `Armed` | P retaken; normal priority | the M → `None` (`lost_p` (`engine/lend.rs`)); sysmon → `Demoting` once it sees the thread run |
/// | `Demoting` | sysmon is lowering the priority | sysmon → `Demoted`; the M waits for it |
/// | `Demoted` | the thread runs at nice 19 (`M::demoted_from` keeps its own) | the M restores its priority → `None` |
///
/// `Armed` is stored before the retake's verdict is published (the P's
/// state word), and the M reads this only after it has seen the verdict,
/// so it never misses a demotion; sysmon demotes only from `Armed`, so it
/// never demotes an M that is back.
///
/// Every access to this word and to `M::demoted_from` is `SeqCst`. They
/// are on cold paths (a retake, an M's first runtime call after one), and
/// the argument above then needs no separate order for each access. What
/// it needs is publication: `Armed` before the verdict, `demoted_from`
/// before `Demoted`, each a store that a later load consumes; Release
/// stores and Acquire loads would carry both, and these may be weakened to
/// them.
///
/// Lowering is always allowed; raising a thread back from nice 19 needs
/// `CAP_SYS_NICE` (or `RLIMIT_NICE`). Without it the M cannot restore its
/// thread and *retires* (`exit_requested`): its G goes on, P-less, to its
/// next park or yield, and continues on another M; the thread exits. So an
/// M whose thread cannot retire — an extra M (a foreign thread) or one
/// with a locked G — is demoted only where restoring works.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Demotion {
    None = 0,
    Armed = 1,
    Demoting = 2,
    Demoted = 3,
}
