//! G: a green thread.
//!
//! A G is a stack, a saved context (one stack pointer, see
//! `arch::context`), a status, and what the crash dump wants to know about
//! it: id, name, the G that created it and where, and what it waits for since
//! when. G structs are never freed: they live in the [`ALLGS`] registry, so a
//! signal handler can walk every G without locks, and a finished G's struct
//! goes to a free list and is reused with a new id.

use crate::m::M;
use crate::registry::Registry;
use crate::stack::Stack;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Every G ever created. Append-only; walkable from a signal handler.
pub static ALLGS: Registry<G> = Registry::new();

/// What a G runs: implemented by the runtime crate's join packet, which
/// stores the result (or panic) for the `JoinHandle`.
pub trait Entry: Send + Sync + 'static {
    /// Runs the G's function once. Must not unwind: the runtime catches
    /// panics at this boundary and hands them to the joiner.
    fn run(&self);
}

/// Lifecycle of a G. Who owns the G's stack and saved context, and who may
/// change the status, depends on the variant.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GStatus {
    /// On a free list (or being set up by `spawn`). It has no stack and no
    /// id that anyone holds; only the free list's owner touches it.
    Idle = 0,
    /// Ready to run and on exactly one run queue (a P's `runnext`, its local
    /// queue, or the global injector), or held by an M that just took it off
    /// one. Not executing. Whoever removes it from the queue owns it and
    /// makes it `Running`.
    Runnable = 1,
    /// Executing on an M (`m.curg` is this G). Only that M changes the
    /// status, when the G parks, yields or exits.
    Running = 2,
    /// Parked: its context is saved on its stack and it is on no run queue.
    /// Exactly one party holds the right to make it `Runnable` again (the
    /// wait queue it sits on, its timer, its joiner) and does so with
    /// `ready`.
    Waiting = 3,
    /// Finished; its stack went back to a stack cache and the struct is on
    /// its way to a free list. Becomes `Idle` when reused.
    Dead = 4,
    /// In a syscall or C call (`runtime::syscall`): it runs on its M, which
    /// has set its P aside for `sysmon` to retake. Only that M changes it.
    Syscall = 5,
}

impl GStatus {
    fn from_u32(v: u32) -> GStatus {
        match v {
            1 => GStatus::Runnable,
            2 => GStatus::Running,
            3 => GStatus::Waiting,
            4 => GStatus::Dead,
            5 => GStatus::Syscall,
            _ => GStatus::Idle,
        }
    }

    /// The word Go prints in a goroutine header for this status.
    pub fn as_str(self) -> &'static str {
        match self {
            GStatus::Idle => "idle",
            GStatus::Runnable => "runnable",
            GStatus::Running => "running",
            GStatus::Waiting => "waiting",
            GStatus::Dead => "dead",
            GStatus::Syscall => "syscall",
        }
    }
}

/// Why a `Waiting` G waits, printed in its traceback header.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `runtime::sleep`.
    Sleep = 1,
    /// `JoinHandle::join` on another G.
    Join = 2,
    /// A `WaitGroup`.
    WaitGroup = 3,
    /// Any other runtime primitive.
    Park = 4,
    /// `sync::Mutex::lock` (also `Once` callers waiting for the first).
    MutexLock = 5,
    /// `sync::RwLock::read`.
    RwLockRead = 6,
    /// `sync::RwLock::write`.
    RwLockWrite = 7,
    /// `sync::Condvar::wait`.
    CondWait = 8,
    /// `sync::Semaphore::acquire`.
    Semacquire = 9,
    /// A channel receive (`Receiver::recv`).
    ChanReceive = 10,
    /// A channel send (`Sender::send`).
    ChanSend = 11,
    /// A `select!` with at least one channel arm.
    Select = 12,
    /// A `select!` with no channel arm and no timeout: parks for good.
    SelectNoCases = 13,
    /// A socket (`runtime::net`), in the netpoller.
    IoWait = 14,
    /// `runtime::block_on`: a future's waker will ready it.
    Future = 15,
}

impl WaitReason {
    fn from_u8(v: u8) -> WaitReason {
        match v {
            1 => WaitReason::Sleep,
            2 => WaitReason::Join,
            3 => WaitReason::WaitGroup,
            4 => WaitReason::Park,
            5 => WaitReason::MutexLock,
            6 => WaitReason::RwLockRead,
            7 => WaitReason::RwLockWrite,
            8 => WaitReason::CondWait,
            9 => WaitReason::Semacquire,
            10 => WaitReason::ChanReceive,
            11 => WaitReason::ChanSend,
            12 => WaitReason::Select,
            13 => WaitReason::SelectNoCases,
            14 => WaitReason::IoWait,
            15 => WaitReason::Future,
            _ => WaitReason::None,
        }
    }

    /// Text for the traceback header (`goroutine 7 [sleep, 2 minutes]:`):
    /// Go's own strings where Go has the same wait.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "join",
            WaitReason::WaitGroup => "sync.WaitGroup.Wait",
            WaitReason::Park => "park",
            WaitReason::MutexLock => "sync.Mutex.Lock",
            WaitReason::RwLockRead => "sync.RWMutex.RLock",
            WaitReason::RwLockWrite => "sync.RWMutex.Lock",
            WaitReason::CondWait => "sync.Cond.Wait",
            WaitReason::Semacquire => "semacquire",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::IoWait => "IO wait",
            WaitReason::Future => "future",
        }
    }
}

/// A green thread. See the module docs and [`GStatus`] for ownership.
pub struct G {
    /// Index in [`ALLGS`].
    pub index: usize,
    /// Current id (a reused struct gets a new one); 0 while idle.
    goid: AtomicU64,
    status: AtomicU32,
    /// Saved stack pointer while not running (see `arch::context`); 0 for
    /// a G that has not run yet: its first frame is written by the M that
    /// first runs it (`resume_sp` in `engine/glife.rs`), and a traceback shows no frames.
    pub(crate) sp: AtomicUsize,
    /// Bounds of the current stack, for tracebacks: `[stack_lo, stack_hi)`.
    stack_lo: AtomicUsize,
    stack_hi: AtomicUsize,
    /// The G's stack. Owned by whoever owns the G (see [`GStatus`]).
    stack: UnsafeCell<Option<Stack>>,
    /// What the G runs; taken when it starts.
    entry: UnsafeCell<Option<Arc<dyn Entry>>>,
    /// Optional name given at spawn.
    name: UnsafeCell<Option<Arc<str>>>,
    /// Id of the G that created this one (0: a plain thread).
    parent_goid: AtomicU64,
    /// `core::panic::Location` of the `go` call, as a raw pointer.
    spawn_site: AtomicPtr<core::panic::Location<'static>>,
    wait_reason: AtomicU8,
    /// Monotonic nanoseconds (runtime clock) when the G last parked.
    wait_since: AtomicU64,
    /// The M this G is locked to by `lock_os_thread`, or null.
    pub(crate) locked_m: AtomicPtr<M>,
    /// Nesting depth of `lock_os_thread`; touched only by the G itself.
    pub(crate) lock_depth: AtomicU32,
    /// Coarse time (as `wait_since`) at which `sysmon` found the thread
    /// running this G asleep in the kernel in plain code (not inside
    /// `runtime::syscall`) and moved its P on; 0 otherwise. Dumps print such
    /// a G as Go prints one in a syscall. Cleared by the G's M at the G's
    /// next runtime call, or by sysmon once the thread runs again.
    blocked_since: AtomicU64,
    /// Debug builds: whether the G sits on a run queue (catches a G queued
    /// twice, which would run it on two Ms at once).
    #[cfg(debug_assertions)]
    queued: core::sync::atomic::AtomicBool,
    /// `g_local!` values; touched only by the G itself while it runs.
    locals: Locals,
    /// Live `ThreadBound` markers of the G (see `thread_bound.rs`) and where
    /// the newest was made; touched only by the G itself.
    pub(crate) thread_bound: AtomicU32,
    pub(crate) thread_bound_site: AtomicPtr<core::panic::Location<'static>>,
}

// SAFETY: the non-atomic fields (`stack`, `entry`, `name`) are touched only
// by the party that owns the G according to its status: the spawner while
// `Idle`, the M running it while `Running`, the M finishing its exit while
// `Dead`. Ownership passes through run queues and `ready`, which are
// synchronising operations. Everything a signal handler or `stats` reads
// concurrently is atomic.
unsafe impl Sync for G {}
// SAFETY: as above; a G is only ever shared as `&'static G`.
unsafe impl Send for G {}

impl core::fmt::Debug for G {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("G")
            .field("goid", &self.goid())
            .field("status", &self.status())
            .finish()
    }
}

impl G {
    pub(crate) fn new(index: usize) -> G {
        G {
            index,
            goid: AtomicU64::new(0),
            status: AtomicU32::new(GStatus::Idle as u32),
            sp: AtomicUsize::new(0),
            stack_lo: AtomicUsize::new(0),
            stack_hi: AtomicUsize::new(0),
            stack: UnsafeCell::new(None),
            entry: UnsafeCell::new(None),
            name: UnsafeCell::new(None),
            parent_goid: AtomicU64::new(0),
            spawn_site: AtomicPtr::new(core::ptr::null_mut()),
            wait_reason: AtomicU8::new(0),
            wait_since: AtomicU64::new(0),
            locked_m: AtomicPtr::new(core::ptr::null_mut()),
            lock_depth: AtomicU32::new(0),
            blocked_since: AtomicU64::new(0),
            #[cfg(debug_assertions)]
            queued: core::sync::atomic::AtomicBool::new(false),
            locals: Locals::default(),
            thread_bound: AtomicU32::new(0),
            thread_bound_site: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The G's `g_local!` storage. Only the running G itself may use it.
    pub(crate) fn locals(&self) -> &Locals {
        &self.locals
    }

    /// Debug check: the G is being put on a run queue.
    #[inline]
    pub(crate) fn on_enqueue(&self) {
        #[cfg(debug_assertions)]
        if self.queued.swap(true, Ordering::AcqRel) {
            crate::throw!("on_enqueue: g is already on a run queue");
        }
    }

    /// Debug check: the G was taken off a run queue to run.
    #[inline]
    pub(crate) fn on_dequeue(&self) {
        #[cfg(debug_assertions)]
        if !self.queued.swap(false, Ordering::AcqRel) {
            crate::throw!("on_dequeue: g was not on a run queue");
        }
    }

    /// The G's id (Go's goid); 0 for an idle struct.
    pub fn goid(&self) -> u64 {
        self.goid.load(Ordering::Relaxed)
    }

    /// Current status.
    pub fn status(&self) -> GStatus {
        GStatus::from_u32(self.status.load(Ordering::Acquire))
    }

    pub(crate) fn set_status(&self, s: GStatus) {
        self.status.store(s as u32, Ordering::Release);
    }

    /// Why the G waits, if it does.
    pub fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    /// Runtime-clock nanoseconds at which the G last parked.
    pub fn wait_since(&self) -> u64 {
        self.wait_since.load(Ordering::Relaxed)
    }

    pub(crate) fn set_wait(&self, reason: WaitReason, since: u64) {
        self.wait_reason.store(reason as u8, Ordering::Relaxed);
        self.wait_since.store(since, Ordering::Relaxed);
    }

    /// When sysmon found this G's thread asleep in the kernel in plain code
    /// (coarse runtime clock, as [`G::wait_since`]), if it is still there as
    /// far as the runtime knows.
    pub fn blocked_since(&self) -> Option<u64> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    pub(crate) fn set_blocked_since(&self, t: u64) {
        self.blocked_since.store(t, Ordering::Relaxed);
    }

    /// The state word of a traceback header and since when (0: no
    /// duration): the wait reason of a parked G, `syscall` for a G in
    /// `runtime::syscall` or whose thread sysmon found asleep in the kernel,
    /// else the status.
    pub fn header_state(&self) -> (&'static str, u64) {
        let st = self.status();
        if st == GStatus::Waiting && self.wait_reason() != WaitReason::None {
            return (self.wait_reason().as_str(), self.wait_since());
        }
        if st == GStatus::Running
            && let Some(t) = self.blocked_since()
        {
            return (GStatus::Syscall.as_str(), t);
        }
        (st.as_str(), 0)
    }

    /// Id of the G that spawned this one; 0 if a plain thread did.
    pub fn parent_goid(&self) -> u64 {
        self.parent_goid.load(Ordering::Relaxed)
    }

    /// Where the `go` call that created this G is.
    pub fn spawn_site(&self) -> Option<&'static core::panic::Location<'static>> {
        let p = self.spawn_site.load(Ordering::Relaxed);
        // SAFETY: only ever set from a `&'static Location`.
        unsafe { p.as_ref() }
    }

    /// `[lo, hi)` of the G's stack (0, 0 while it has none).
    pub fn stack_bounds(&self) -> (usize, usize) {
        (
            self.stack_lo.load(Ordering::Relaxed),
            self.stack_hi.load(Ordering::Relaxed),
        )
    }

    /// Saved stack pointer of a G that is not running.
    pub fn saved_sp(&self) -> usize {
        self.sp.load(Ordering::Acquire)
    }

    /// The G's name.
    ///
    /// Callable by the G itself, or by anyone while the G cannot finish
    /// (the name is set before the G is published and dropped only when the
    /// struct is reused).
    pub fn name(&self) -> Option<Arc<str>> {
        // SAFETY: `name` is written only while the G is Idle (in `prepare`),
        // before it is published to any run queue; afterwards it is only read.
        unsafe { (*self.name.get()).clone() }
    }

    /// The name, without touching its reference count: for crash dumps,
    /// which must not allocate or free. The text stays valid unless the G
    /// finishes and its struct is reused while the caller reads it.
    pub fn name_static(&'static self) -> Option<&'static str> {
        // SAFETY: see `name`; a reference into the Arc the G holds.
        unsafe { (*self.name.get()).as_deref() }
    }

    /// The M this G is locked to, or null.
    pub fn locked_m_ptr(&self) -> *mut M {
        self.locked_m.load(Ordering::Relaxed)
    }

    /// Sets up an idle G to run `entry` on `stack`.
    ///
    /// # Safety
    ///
    /// The caller owns the G (status `Idle`, taken off a free list) and the
    /// stack.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub(crate) unsafe fn prepare(
        &self,
        goid: u64,
        stack: Stack,
        sp: usize,
        entry: Arc<dyn Entry>,
        name: Option<Arc<str>>,
        parent: u64,
        site: &'static core::panic::Location<'static>,
    ) {
        self.goid.store(goid, Ordering::Relaxed);
        self.stack_lo.store(stack.bottom(), Ordering::Relaxed);
        self.stack_hi.store(stack.top(), Ordering::Relaxed);
        self.sp.store(sp, Ordering::Relaxed);
        // SAFETY: the caller owns the idle G; nobody else reads these.
        unsafe {
            *self.stack.get() = Some(stack);
            *self.entry.get() = Some(entry);
            *self.name.get() = name;
        }
        self.parent_goid.store(parent, Ordering::Relaxed);
        self.spawn_site
            .store(site as *const _ as *mut _, Ordering::Relaxed);
        self.set_wait(WaitReason::None, 0);
        self.locked_m
            .store(core::ptr::null_mut(), Ordering::Relaxed);
        self.lock_depth.store(0, Ordering::Relaxed);
        self.thread_bound.store(0, Ordering::Relaxed);
    }

    /// Gives an idle G a stack of its own for good (an extra M's callback
    /// G keeps its stack across callbacks).
    ///
    /// # Safety
    ///
    /// The caller owns the G, which has no stack.
    pub(crate) unsafe fn attach_stack(&self, stack: Stack) {
        self.stack_lo.store(stack.bottom(), Ordering::Relaxed);
        self.stack_hi.store(stack.top(), Ordering::Relaxed);
        // SAFETY: the caller owns the G.
        unsafe { *self.stack.get() = Some(stack) };
    }

    /// Replaces the stack of a G that has never run by `f(stack)`.
    ///
    /// # Safety
    ///
    /// The caller owns the G (Runnable, off every queue), which has not run
    /// yet, so nothing is on its stack.
    pub(crate) unsafe fn trade_stack(&self, f: impl FnOnce(Stack) -> Stack) {
        // SAFETY: the caller owns the G and so its stack slot.
        let slot = unsafe { &mut *self.stack.get() };
        if let Some(st) = slot.take() {
            let st = f(st);
            self.stack_lo.store(st.bottom(), Ordering::Relaxed);
            self.stack_hi.store(st.top(), Ordering::Relaxed);
            *slot = Some(st);
        }
    }

    /// Top of the G's stack (0 if it has none).
    pub(crate) fn stack_top(&self) -> usize {
        self.stack_hi.load(Ordering::Relaxed)
    }

    /// Gives an idle G a fresh id and a saved context, keeping its stack.
    pub(crate) fn reset_for_callback(&self, goid: u64, sp: usize) {
        self.goid.store(goid, Ordering::Relaxed);
        self.sp.store(sp, Ordering::Relaxed);
        self.set_wait(WaitReason::None, 0);
    }

    /// Takes the entry to run.
    ///
    /// # Safety
    ///
    /// Called once, by the G itself as it starts.
    pub(crate) unsafe fn take_entry(&self) -> Option<Arc<dyn Entry>> {
        // SAFETY: the running G owns its fields.
        unsafe { (*self.entry.get()).take() }
    }

    /// Takes the stack of a dead G and clears what the struct held.
    ///
    /// # Safety
    ///
    /// The caller owns the G (status `Dead`) and no code runs on its stack.
    pub(crate) unsafe fn take_stack(&self) -> Option<Stack> {
        self.stack_lo.store(0, Ordering::Relaxed);
        self.stack_hi.store(0, Ordering::Relaxed);
        self.goid.store(0, Ordering::Relaxed);
        // SAFETY: the caller owns the dead G.
        unsafe {
            *self.name.get() = None;
            (*self.stack.get()).take()
        }
    }
}

/// A handle to a G. Gs are never freed, so a `GRef` is a `&'static G` that
/// run queues and wait lists can copy freely; what it may do is governed by
/// the G's status.
#[derive(Clone, Copy)]
pub struct GRef(pub &'static G);

impl PartialEq for GRef {
    fn eq(&self, other: &GRef) -> bool {
        core::ptr::eq(self.0, other.0)
    }
}

impl Eq for GRef {}

impl core::fmt::Debug for GRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl core::ops::Deref for GRef {
    type Target = G;
    fn deref(&self) -> &G {
        self.0
    }
}

impl GRef {
    pub(crate) fn as_ptr(self) -> *mut G {
        self.0 as *const G as *mut G
    }

    /// # Safety
    ///
    /// `p` must be null or come from [`GRef::as_ptr`].
    pub(crate) unsafe fn from_ptr(p: *mut G) -> Option<GRef> {
        // SAFETY: Gs are 'static; p came from as_ptr.
        unsafe { p.as_ref() }.map(GRef)
    }
}

/// One stored value: the box (as a raw pointer) and how to drop it.
pub(crate) struct Slot {
    pub(crate) value: *mut (),
    pub(crate) drop: unsafe fn(*mut ()),
}

/// The G-local values of one G or one plain thread (the storage behind
/// [`GLocal`](crate::glocal::GLocal); see `glocal.rs`).
#[derive(Default)]
pub struct Locals {
    pub(crate) slots: UnsafeCell<Vec<Option<Slot>>>,
    /// Calls of `GLocal::with` under way (their references are live).
    pub(crate) depth: core::cell::Cell<usize>,
}

// SAFETY: a `Locals` is only touched by the G that owns it (or, for a
// thread's, by that thread); it moves between threads only with its G, at a
// park, which synchronises. The values in it are `Send` (see `GLocal`).
unsafe impl Send for Locals {}
// SAFETY: as above: no two threads touch one `Locals` at the same time.
unsafe impl Sync for Locals {}

impl core::fmt::Debug for Locals {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Locals").finish_non_exhaustive()
    }
}

impl Locals {
    /// Drops every value, repeating while destructors make new ones (a
    /// destructor that touches another key). Called by the owner only.
    ///
    /// # Safety
    ///
    /// The caller owns this `Locals` (it is the G running, or its thread).
    pub(crate) unsafe fn clear(&self) {
        if self.depth.get() != 0 {
            panic!("G-local values cannot be dropped inside GLocal::with");
        }
        loop {
            // SAFETY: the caller owns the storage; the vector is taken out
            // before any destructor runs, so a destructor that reaches a
            // key again finds a fresh vector.
            let slots = core::mem::take(unsafe { &mut *self.slots.get() });
            if slots.iter().all(Option::is_none) {
                return;
            }
            for slot in slots.into_iter().flatten() {
                // SAFETY: `value` came from `Box::into_raw` of the type
                // `drop` was instantiated with, and is dropped once.
                unsafe { (slot.drop)(slot.value) };
            }
        }
    }
}

impl Drop for Locals {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nothing else can reach this storage.
        unsafe { self.clear() };
    }
}
