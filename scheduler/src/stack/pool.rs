//! The pool: every G stack of a runtime. [`Stack`] (an owned handle),
//! [`StackConfig`], and [`StackPool`] with its size classes, free lists,
//! chunk table (read lock-free by signal handlers), live counters and the
//! scavenger. Layout, recycling and counting are described in
//! [`crate::stack`].

use crate::lock_rank::{Rank, RankedMutex};
use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

use super::cache::{CACHE_BATCH, CACHE_SLOTS};
use super::guard::{self, GUARD_PAGES, GuardKind, guard_kind};
use super::limits::{address_space, mprotect_map_budget, out_of_mappings};
use super::size::{
    self, CHUNK_FIRST, CHUNK_MAX, DEFAULT_STACK_SIZE, MAX_CHUNKS, page_size, round_up,
};
use super::{StackError, errno};

/// An owned G stack: a usable range with a guard below it.
///
/// A plain handle: dropping it does nothing (the memory stays with the pool
/// and is lost to reuse); give it back with [`StackPool::free`] or
/// [`StackCache::free`](super::StackCache::free).
#[derive(Debug)]
pub struct Stack {
    pub(super) bottom: usize,
    pub(super) size: usize,
    guard: usize,
    /// No page of it is resident: freshly carved, or released by the
    /// scavenger. Its first use costs a page fault.
    untouched: bool,
}

impl Stack {
    /// Whether no page of the stack is resident yet (its first write costs
    /// a page fault, ~2 µs on a VM).
    #[inline]
    pub fn untouched(&self) -> bool {
        self.untouched
    }

    /// The stack as given back after a G ran on it: its pages may be
    /// resident. (A stack moved between caches and the pool without having
    /// been used keeps its flag: a trade puts untouched stacks back.)
    #[inline]
    pub(super) fn used(self) -> Stack {
        Stack {
            untouched: false,
            ..self
        }
    }

    /// One past the highest usable address: the initial stack pointer
    /// (stacks grow down from here). Aligned to the page size.
    #[inline]
    pub fn top(&self) -> usize {
        self.bottom + self.size
    }

    /// Lowest usable address (just above the guard).
    #[inline]
    pub fn bottom(&self) -> usize {
        self.bottom
    }

    /// Usable bytes (a multiple of the page size).
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// The guard pages right below [`Stack::bottom`]: touching them faults.
    #[inline]
    pub fn guard(&self) -> Range<usize> {
        self.bottom - self.guard..self.bottom
    }
}

/// Configuration of a [`StackPool`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackConfig {
    /// Usable bytes of the default stack: the size [`StackCache`](super::StackCache) serves.
    /// Rounded up to the page size. An invalid size is not corrected: every
    /// allocation of it fails with [`StackError::InvalidSize`].
    pub default_size: usize,
    /// Most stacks in use at once (`usize::MAX`: unlimited). Stacks held in
    /// pools and caches do not count.
    pub max_stacks: usize,
    /// Guard with `mprotect` even where `MADV_GUARD_INSTALL` works (tests of
    /// the map-limit path).
    pub force_mprotect: bool,
    /// Pooled stacks [`StackPool::scavenge`] leaves resident.
    pub cache_high_water: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            default_size: DEFAULT_STACK_SIZE,
            max_stacks: usize::MAX,
            force_mprotect: false,
            cache_high_water: 1024,
        }
    }
}

/// One entry of the append-only chunk table. Written once, under the pool
/// lock, before `StackPool::n_chunks` publishes it.
#[derive(Default)]
struct ChunkEntry {
    base: AtomicUsize,
    len: AtomicUsize,
    stride: AtomicUsize,
}

/// Stacks of one usable size.
struct SizeClass {
    /// Usable bytes.
    size: usize,
    /// Guard plus usable bytes: the distance between slots.
    stride: usize,
    /// Freed stacks whose pages may be resident, oldest first (LIFO reuse).
    resident: Vec<Stack>,
    /// Freed stacks whose pages were given back by `scavenge`.
    released: Vec<Stack>,
    /// Carved slots (addresses of their guard pages) whose guard could not
    /// be installed; tried again before carving more.
    unguarded: Vec<usize>,
    /// Next slot to carve in the current chunk, and the chunk's end.
    next: usize,
    end: usize,
    /// Length of the next chunk to map (a multiple of `stride`).
    next_chunk: usize,
}

impl SizeClass {
    fn new(size: usize, guard: usize) -> SizeClass {
        let stride = size + guard;
        let first = CHUNK_FIRST.max(stride.saturating_mul(16));
        SizeClass {
            size,
            stride,
            resident: Vec::new(),
            released: Vec::new(),
            unguarded: Vec::new(),
            next: 0,
            end: 0,
            next_chunk: Self::fit(first, stride),
        }
    }

    /// `len` capped at `CHUNK_MAX` and rounded down to whole strides (at
    /// least one: a stack larger than `CHUNK_MAX` gets a chunk of its own).
    fn fit(len: usize, stride: usize) -> usize {
        (len.min(CHUNK_MAX) / stride).max(1) * stride
    }
}

/// What the pool lock protects.
pub(super) struct PoolSynced {
    /// Size classes; the default size first (it is scavenged last).
    classes: Vec<SizeClass>,
    /// Mappings this pool may still add for mprotect guards: `None` until
    /// the first mprotect guard is needed, then `Some(None)` if the limit is
    /// unknown (only the kernel's `ENOMEM` stops us).
    map_budget: Option<Option<usize>>,
}

impl PoolSynced {
    fn class(&mut self, size: usize, guard: usize) -> &mut SizeClass {
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                self.classes.push(SizeClass::new(size, guard));
                self.classes.len() - 1
            }
        };
        &mut self.classes[i]
    }
}

/// Pool ids start at 1; 0 marks an unbound [`StackCache`](super::StackCache).
static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

/// All G stacks of a runtime: chunks, free lists per size, counters.
/// `Sync`: shared by every P; see the module docs.
pub struct StackPool {
    /// Tells caches apart from pools they were not bound to.
    pub(super) id: usize,
    cfg: StackConfig,
    kind: GuardKind,
    /// Guard bytes per stack (`GUARD_PAGES` pages).
    guard: usize,
    page: usize,
    /// The default size rounded to pages; `usize::MAX` if invalid (then the
    /// cache path reports `InvalidSize`).
    pub(super) default_size: usize,
    /// `max_stacks != usize::MAX`: every allocation checks `live`.
    pub(super) limited: bool,
    pub(super) synced: RankedMutex<PoolSynced>,
    /// Stacks in use, as counted by the pool and (with a limit) by caches.
    /// Wrapping: without a limit, a stack allocated through a cache and
    /// freed to the pool makes this go "below zero"; `live()` adds the cache
    /// slots back. Relaxed: a count, it publishes no data.
    pub(super) live: AtomicUsize,
    /// Per-cache shares of the live count (unlimited pools only), each
    /// written only by the cache that owns it.
    pub(super) cache_live: Box<[CachePadded<AtomicIsize>]>,
    /// Slots handed out (may exceed `CACHE_SLOTS`: the rest share `live`).
    pub(super) n_cache_slots: AtomicUsize,
    /// Stacks on the free lists (resident, released, or being scavenged).
    pooled: AtomicUsize,
    /// Pooled stacks whose pages were given back.
    released: AtomicUsize,
    /// Append-only chunk table; see `n_chunks`.
    chunks: Box<[ChunkEntry]>,
    /// Published chunk entries. Stored with `Release` after the entry is
    /// written (under the lock), loaded with `Acquire` by lock-free readers.
    n_chunks: AtomicUsize,
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("kind", &self.kind)
            .field("default_size", &self.cfg.default_size)
            .field("max_stacks", &self.cfg.max_stacks)
            .field("live", &self.live())
            .field("pooled", &self.pooled())
            .field("released", &self.released())
            .field("chunks", &self.n_chunks.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl StackPool {
    /// A pool configured by `cfg`. Maps nothing until the first allocation
    /// (the guard probe aside, which runs once per process).
    pub fn new(cfg: StackConfig) -> StackPool {
        let kind = if cfg.force_mprotect {
            GuardKind::Mprotect
        } else {
            guard_kind()
        };
        let page = page_size();
        let guard = GUARD_PAGES * page;
        let default_size = if size::is_valid(cfg.default_size) {
            round_up(cfg.default_size, page)
        } else {
            usize::MAX
        };
        let mut classes = Vec::new();
        if default_size != usize::MAX {
            classes.push(SizeClass::new(default_size, guard));
        }
        StackPool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            guard,
            page,
            default_size,
            limited: cfg.max_stacks != usize::MAX,
            synced: RankedMutex::new(
                Rank::StackPool,
                PoolSynced {
                    classes,
                    map_budget: None,
                },
            ),
            live: AtomicUsize::new(0),
            cache_live: (0..CACHE_SLOTS)
                .map(|_| CachePadded::new(AtomicIsize::new(0)))
                .collect(),
            n_cache_slots: AtomicUsize::new(0),
            pooled: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            chunks: (0..MAX_CHUNKS).map(|_| ChunkEntry::default()).collect(),
            n_chunks: AtomicUsize::new(0),
            cfg,
        }
    }

    /// How this pool makes guards.
    pub fn guard_kind(&self) -> GuardKind {
        self.kind
    }

    /// The configured default size (as given, not rounded).
    pub fn default_size(&self) -> usize {
        self.cfg.default_size
    }

    /// Stacks in use: handed out and not freed (stacks in caches and pools
    /// do not count). Exact when nothing allocates concurrently.
    pub fn live(&self) -> usize {
        let mut n = self.live.load(Ordering::Relaxed) as isize;
        let slots = self.n_cache_slots.load(Ordering::Relaxed).min(CACHE_SLOTS);
        for s in &self.cache_live[..slots] {
            n = n.wrapping_add(s.load(Ordering::Relaxed));
        }
        n.max(0) as usize
    }

    /// Free stacks kept by the pool for reuse (not counting P caches).
    pub fn pooled(&self) -> usize {
        self.pooled.load(Ordering::Relaxed)
    }

    /// Pooled stacks whose pages were given back by [`StackPool::scavenge`].
    pub fn released(&self) -> usize {
        self.released.load(Ordering::Relaxed)
    }

    /// `size` checked and rounded up to the page size.
    #[inline]
    pub(super) fn round_size(&self, size: usize) -> Result<usize, StackError> {
        size::checked(size, self.page)
    }

    /// Whether a request for `size` is served at the default size.
    #[inline]
    pub(super) fn is_default(&self, size: usize) -> bool {
        size == self.default_size
            || (size::is_valid(size) && round_up(size, self.page) == self.default_size)
    }

    /// Counts one more stack in use on the shared counter, checking the
    /// limit.
    #[inline]
    pub(super) fn count_alloc(&self) -> Result<(), StackError> {
        let before = self.live.fetch_add(1, Ordering::Relaxed);
        if self.limited && before >= self.cfg.max_stacks {
            self.live.fetch_sub(1, Ordering::Relaxed);
            return Err(self.limit_reached());
        }
        Ok(())
    }

    /// A `MapLimit` error from inside `take`, whose callers have already
    /// counted the stack being made: it is not in use, so it does not count.
    #[cold]
    fn map_limit(&self) -> StackError {
        StackError::map_limit(self.live().saturating_sub(1))
    }

    #[cold]
    fn limit_reached(&self) -> StackError {
        StackError::LimitReached {
            limit: self.cfg.max_stacks,
        }
    }

    /// A stack of at least `size` usable bytes (rounded up to the page
    /// size). Takes the pool lock; Ps allocate through their
    /// [`StackCache`](super::StackCache) instead.
    pub fn alloc(&self, size: usize) -> Result<Stack, StackError> {
        let size = self.round_size(size)?;
        self.count_alloc()?;
        let mut got = None;
        match self.take(size, 1, |st| got = Some(st)) {
            Ok(_) => Ok(got.expect("StackPool::alloc: take returned no stack")),
            Err(e) => {
                self.live.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// A stack like [`StackPool::alloc`] that `max_stacks` does not count
    /// and that is never freed: the callback stack of an extra M, which the
    /// pool keeps one of as a spare for foreign threads. `max_stacks` bounds
    /// the Gs a program spawns; `max_stacks(1)` must still allow one.
    pub fn alloc_outside_limit(&self, size: usize) -> Result<Stack, StackError> {
        let size = self.round_size(size)?;
        let mut got = None;
        self.take(size, 1, |st| got = Some(st))?;
        Ok(got.expect("StackPool::alloc_outside_limit: take returned no stack"))
    }

    /// Gives a stack back for reuse. The stack must come from this pool and
    /// no G may run on it any more.
    pub fn free(&self, st: Stack) {
        debug_assert!(self.owns(&st), "StackPool::free: stack of another pool");
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.put(core::iter::once(st.used()));
    }

    /// Puts stacks on their free lists (they are not counted as live).
    pub(super) fn put(&self, stacks: impl Iterator<Item = Stack>) {
        let mut s = self.synced.lock();
        let mut n = 0;
        for st in stacks {
            s.class(st.size, self.guard).resident.push(st);
            n += 1;
        }
        self.pooled.fetch_add(n, Ordering::Relaxed);
    }

    /// Hands `sink` up to `n` (≤ `CACHE_BATCH`) stacks of `size` (valid,
    /// rounded) bytes: pooled ones first (resident before released), then
    /// fresh slots. Does not count them as live. Returns how many it gave,
    /// or the first error if that is none.
    pub(super) fn take(
        &self,
        size: usize,
        n: usize,
        mut sink: impl FnMut(Stack),
    ) -> Result<usize, StackError> {
        debug_assert!((1..=CACHE_BATCH).contains(&n));
        let mut given = 0;
        let mut fresh = [0usize; CACHE_BATCH];
        let mut n_fresh = 0;
        let mut err = None;
        {
            let mut s = self.synced.lock();
            let mut budget = s.map_budget;
            let c = s.class(size, self.guard);
            while given < n {
                if let Some(st) = c.resident.pop() {
                    sink(st);
                } else if let Some(st) = c.released.pop() {
                    self.released.fetch_sub(1, Ordering::Relaxed);
                    sink(st);
                } else {
                    break;
                }
                self.pooled.fetch_sub(1, Ordering::Relaxed);
                given += 1;
            }
            while given + n_fresh < n {
                if let Some(slot) = c.unguarded.pop() {
                    fresh[n_fresh] = slot;
                    n_fresh += 1;
                    continue;
                }
                if self.kind == GuardKind::Mprotect {
                    // Two mappings per mprotect guard: the guard and the
                    // usable range above it, split off the chunk.
                    let b = budget.get_or_insert_with(mprotect_map_budget);
                    match b {
                        Some(left) if *left < 2 => {
                            err = Some(self.map_limit());
                            break;
                        }
                        Some(left) => *left -= 2,
                        None => {}
                    }
                }
                if c.next == c.end
                    && let Err(e) = self.map_chunk(c)
                {
                    if let Some(Some(left)) = budget.as_mut() {
                        *left += 2;
                    }
                    err = Some(e);
                    break;
                }
                fresh[n_fresh] = c.next;
                n_fresh += 1;
                c.next += c.stride;
            }
            s.map_budget = budget;
        }
        // Guards outside the lock: the syscalls of Ps carving at the same
        // time do not queue behind each other.
        let mut failed = [0usize; CACHE_BATCH];
        let mut n_failed = 0;
        let batched = self.install_guards_batched(&fresh[..n_fresh]);
        for (i, &slot) in fresh[..n_fresh].iter().enumerate() {
            let r = if i < batched {
                Ok(())
            } else {
                self.install_guard(slot)
            };
            match r {
                Ok(()) => {
                    sink(Stack {
                        bottom: slot + self.guard,
                        size,
                        guard: self.guard,
                        untouched: true,
                    });
                    given += 1;
                }
                Err(e) => {
                    failed[n_failed] = slot;
                    n_failed += 1;
                    err = Some(e);
                }
            }
        }
        if n_failed > 0 {
            // Back to the class unused: an unguarded stack is never handed
            // out.
            let mut s = self.synced.lock();
            s.class(size, self.guard)
                .unguarded
                .extend_from_slice(&failed[..n_failed]);
        }
        match err {
            Some(e) if given == 0 => Err(e),
            _ => Ok(given),
        }
    }

    /// Maps the next chunk of `c` and publishes it in the chunk table.
    /// Called with the pool lock held (it serialises table writers).
    ///
    /// Under an address-space limit the chunk is at most a quarter of the
    /// room left, so the rest of the process (threads, `malloc`) keeps some;
    /// a refused mapping is retried at half the length down to one stride.
    #[cold]
    fn map_chunk(&self, c: &mut SizeClass) -> Result<(), StackError> {
        let mut len = c.next_chunk;
        let n = self.n_chunks.load(Ordering::Relaxed);
        if n == MAX_CHUNKS {
            // 4 TiB of stacks (64-bit); the address space is as good as
            // exhausted.
            return Err(StackError::OutOfMemory {
                requested: len,
                errno: libc::ENOMEM,
                address_space: address_space(),
            });
        }
        if let Some((limit, used)) = address_space() {
            // Room for the rest of the process (threads, `malloc`) stays:
            // a stack that fits but leaves `malloc` nothing would turn an
            // `Err` from `try_go` into an abort a moment later.
            let reserve = (limit / 16).min(64 << 20);
            let room = limit.saturating_sub(used).saturating_sub(reserve);
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            if room < c.stride {
                return Err(StackError::OutOfMemory {
                    requested: c.stride,
                    errno: libc::ENOMEM,
                    address_space: Some((limit, used)),
                });
            }
            len = SizeClass::fit(len.min(room / 4), c.stride);
        }
        let p = loop {
            // SAFETY: a fresh private anonymous mapping at an address the
            // kernel chooses; no existing memory is affected.
            let p = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                break p;
            }
            let errno = errno();
            // mmap also fails with ENOMEM when the process is out of
            // mappings; say so rather than blame the address space.
            if errno == libc::ENOMEM && out_of_mappings() {
                return Err(self.map_limit());
            }
            if errno == libc::ENOMEM && len > c.stride {
                len = SizeClass::fit(len / 2, c.stride);
                continue;
            }
            return Err(StackError::OutOfMemory {
                requested: len,
                errno,
                address_space: address_space(),
            });
        };
        // A hint; failure (a kernel without THP) changes nothing.
        // SAFETY: advice on the whole mapping just made, which no one uses
        // yet.
        unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
        let base = p as usize;
        let e = &self.chunks[n];
        e.base.store(base, Ordering::Relaxed);
        e.len.store(len, Ordering::Relaxed);
        e.stride.store(c.stride, Ordering::Relaxed);
        // Release: a reader that sees n + 1 sees the entry.
        self.n_chunks.store(n + 1, Ordering::Release);
        c.next = base;
        c.end = base + len;
        c.next_chunk = SizeClass::fit(len.saturating_mul(2), c.stride);
        Ok(())
    }

    /// Guards the fresh slots whose guard pages start at `slots` with one
    /// system call where the kernel offers one; returns how many leading
    /// slots it guarded (the caller guards the rest one by one).
    fn install_guards_batched(&self, slots: &[usize]) -> usize {
        // SAFETY: `take` passes the guard ranges of slots it just carved
        // from a chunk of this pool, which nothing uses yet.
        unsafe { guard::install_batched(self.kind, slots, self.guard) }
    }

    /// Guards the slot whose guard pages start at `slot`. On failure the
    /// slot is untouched (still read-write) and the caller keeps it unused.
    fn install_guard(&self, slot: usize) -> Result<(), StackError> {
        // SAFETY: as in `install_guards_batched`: a carved, unused slot of
        // a chunk of this pool.
        match unsafe { guard::install(self.kind, slot, self.guard) } {
            Ok(()) => Ok(()),
            Err(libc::ENOMEM) => Err(self.map_limit()),
            Err(errno) => Err(StackError::OutOfMemory {
                requested: self.guard,
                errno,
                address_space: None,
            }),
        }
    }

    /// Gives back the resident pages of pooled stacks beyond the high-water
    /// mark (`cache_high_water`), keeping the most recently freed ones and
    /// every guard. Returns how many stacks it released. Called by idle Ms,
    /// never on a hot path; the `madvise` calls run outside the lock.
    pub fn scavenge(&self) -> usize {
        let mut victims: Vec<Stack> = Vec::new();
        {
            let mut s = self.synced.lock();
            let mut keep = self.cfg.cache_high_water;
            for c in s.classes.iter_mut() {
                let n = c.resident.len();
                let k = n.min(keep);
                keep -= k;
                // The oldest first: the front of the LIFO list.
                victims.extend(c.resident.drain(..n - k));
            }
        }
        if victims.is_empty() {
            return 0;
        }
        // The victims are off every list while their pages are dropped, so
        // no allocation can hand one out meanwhile (they still count as
        // pooled).
        let mut done = Vec::with_capacity(victims.len());
        let mut kept = Vec::new();
        for st in victims {
            // SAFETY: the stack is pooled and off the free lists: no G runs
            // on it and no allocation can take it. DONTNEED drops its usable
            // pages (they read back as zero); the guard below is untouched.
            let r = unsafe {
                libc::madvise(st.bottom as *mut libc::c_void, st.size, libc::MADV_DONTNEED)
            };
            if r == 0 { done.push(st) } else { kept.push(st) }
        }
        let n = done.len();
        let mut s = self.synced.lock();
        for st in kept {
            s.class(st.size, self.guard).resident.push(st);
        }
        for mut st in done {
            st.untouched = true;
            s.class(st.size, self.guard).released.push(st);
        }
        self.released.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Whether `addr` lies in the guard pages of a stack of this pool.
    ///
    /// Lock-free, allocation-free, async-signal-safe: for a fault handler
    /// telling a stack overflow from another fault. (Slots not carved yet
    /// count too; nothing runs on them, so no fault comes from there.)
    pub fn guard_of(&self, addr: usize) -> bool {
        let n = self.n_chunks.load(Ordering::Acquire);
        for e in &self.chunks[..n] {
            let base = e.base.load(Ordering::Relaxed);
            let off = addr.wrapping_sub(base);
            if off < e.len.load(Ordering::Relaxed) {
                return off % e.stride.load(Ordering::Relaxed) < self.guard;
            }
        }
        false
    }

    /// Whether `st` is a slot of this pool (debug checks).
    pub(super) fn owns(&self, st: &Stack) -> bool {
        let n = self.n_chunks.load(Ordering::Acquire);
        let slot = st.bottom.wrapping_sub(self.guard);
        self.chunks[..n].iter().any(|e| {
            let off = slot.wrapping_sub(e.base.load(Ordering::Relaxed));
            let stride = e.stride.load(Ordering::Relaxed);
            off < e.len.load(Ordering::Relaxed)
                && off % stride == 0
                && st.size + self.guard == stride
        })
    }
}

impl Drop for StackPool {
    /// Unmaps every chunk, unless stacks are still in use: then the chunks
    /// are leaked rather than pulled from under a running G.
    fn drop(&mut self) {
        if self.live() != 0 {
            return;
        }
        let n = *self.n_chunks.get_mut();
        for e in &mut self.chunks[..n] {
            let (base, len) = (*e.base.get_mut(), *e.len.get_mut());
            // SAFETY: a chunk this pool mapped; no stack of it is in use
            // (live is 0, and the pool is being dropped, so no cache can
            // hand out the cached ones: caches need `&StackPool`).
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
        }
    }
}
