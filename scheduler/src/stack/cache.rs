//! A P's private cache of default-size stacks: the hot path of spawning
//! and exiting Gs, with no lock, no syscall and (without a stack limit) no
//! shared cache line. See [`crate::stack`], *Recycling* and *Counting live
//! stacks*.

use core::sync::atomic::Ordering;
use std::collections::VecDeque;

use super::{Stack, StackError, StackPool};

/// Default-size stacks a P's cache holds at most. In a burst of spawns the
/// spawning P takes stacks from the pool and the Ps running the Gs give
/// them back, a batch per pool lock: 32 made that lock a tenth of a spawn
/// and join (the lock's line moves between CPUs at every batch); 128 brings
/// spawn + join from ~375 to ~240 ns (256: ~235). The cost is the pages a
/// cached stack keeps resident, typically one or two: under 1 MiB per P.
pub const CACHE_MAX: usize = 128;

/// Stacks moved between a cache and the pool at once (half a cache).
pub const CACHE_BATCH: usize = CACHE_MAX / 2;

/// Caches that get a private live-count slot; later ones share the pool's
/// counter (correct, only slower).
pub(super) const CACHE_SLOTS: usize = 256;

/// A P's private cache of default-size stacks: the hot path, with no lock
/// and no syscall. Every method takes `&mut self`: the P that owns the cache
/// is the only user. A cache serves one pool for its whole life (it binds to
/// the first pool it is used with).
#[derive(Debug)]
pub struct StackCache {
    /// Coldest first: frees push at the back, allocations pop from the
    /// back, spills drain the front.
    stacks: VecDeque<Stack>,
    /// Id of the bound pool (0: not bound yet).
    pool_id: usize,
    /// Index of this cache's live-count slot in the pool; `usize::MAX`: use
    /// the pool's shared counter.
    slot: usize,
    /// This cache's share of the live count (what `slot` holds).
    live_delta: isize,
}

impl Default for StackCache {
    fn default() -> Self {
        StackCache::new()
    }
}

impl StackCache {
    /// An empty cache.
    pub fn new() -> StackCache {
        StackCache {
            stacks: VecDeque::with_capacity(CACHE_MAX + 1),
            pool_id: 0,
            slot: usize::MAX,
            live_delta: 0,
        }
    }

    /// Stacks held.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether the cache holds no stack.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Binds the cache to `pool` on first use; stops on a second pool.
    #[inline]
    fn check_pool(&mut self, pool: &StackPool) {
        if self.pool_id != pool.id {
            self.bind(pool);
        }
    }

    #[cold]
    fn bind(&mut self, pool: &StackPool) {
        assert!(
            self.pool_id == 0,
            "StackCache: used with a second StackPool (bound to pool {}, given pool {})",
            self.pool_id,
            pool.id
        );
        self.pool_id = pool.id;
        if !pool.limited {
            let i = pool.n_cache_slots.fetch_add(1, Ordering::Relaxed);
            if i < CACHE_SLOTS {
                self.slot = i;
            }
        }
    }

    /// Counts a stack handed out by the cache.
    #[inline]
    fn count_alloc(&mut self, pool: &StackPool) -> Result<(), StackError> {
        if self.slot == usize::MAX {
            return pool.count_alloc();
        }
        self.live_delta += 1;
        // Only this cache writes its slot: a plain store, no read-modify-write.
        pool.cache_live[self.slot].store(self.live_delta, Ordering::Relaxed);
        Ok(())
    }

    /// Counts a stack given back to the cache.
    #[inline]
    fn count_free(&mut self, pool: &StackPool) {
        if self.slot == usize::MAX {
            pool.live.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.live_delta -= 1;
        pool.cache_live[self.slot].store(self.live_delta, Ordering::Relaxed);
    }

    /// A stack of at least `size` usable bytes. The default size comes from
    /// the cache (refilled with [`CACHE_BATCH`] stacks from the pool when
    /// empty); other sizes from the pool directly.
    #[inline]
    pub fn alloc(&mut self, pool: &StackPool, size: usize) -> Result<Stack, StackError> {
        self.check_pool(pool);
        if !pool.is_default(size) {
            return pool.alloc(size);
        }
        self.count_alloc(pool)?;
        match self.stacks.pop_back() {
            Some(st) => Ok(st),
            None => self.refill(pool),
        }
    }

    /// The slow half of `alloc`: the cache is empty and one stack is
    /// already counted as live.
    #[cold]
    fn refill(&mut self, pool: &StackPool) -> Result<Stack, StackError> {
        let r = match pool.round_size(pool.default_size) {
            Ok(size) => pool.take(size, CACHE_BATCH, |st| self.stacks.push_back(st)),
            Err(e) => Err(e),
        };
        match r.map(|_| self.stacks.pop_back()) {
            Ok(Some(st)) => Ok(st),
            Ok(None) => unreachable!("StackCache::refill: take gave no stack"),
            Err(e) => {
                self.count_free(pool);
                Err(e)
            }
        }
    }

    /// Gives a stack back: into the cache for the default size (half the
    /// cache goes to the pool first when it is full), to the pool otherwise.
    #[inline]
    pub fn free(&mut self, pool: &StackPool, st: Stack) {
        self.check_pool(pool);
        if st.size != pool.default_size {
            return pool.free(st);
        }
        debug_assert!(pool.owns(&st), "StackCache::free: stack of another pool");
        self.count_free(pool);
        if self.stacks.len() >= CACHE_MAX {
            self.spill(pool);
        }
        self.stacks.push_back(st.used());
    }

    /// Trades `st` — a default-size stack handed out but never used (its G
    /// has not run yet) — for the most recently freed stack of this cache,
    /// whose top pages are likely still in the CPU caches and the TLB; `st`
    /// goes to the cold end. In a burst of spawns the spawning P hands out
    /// a new stack per G, while the Ps that run the Gs free theirs at once:
    /// with the trade those Ps keep reusing a few warm stacks instead of
    /// touching a cold page (a cache and TLB miss, ~17% of a spawn + join)
    /// per G. Rejected: giving a G its stack only when it first runs (then
    /// `try_go` could not report a stack it cannot make).
    #[inline]
    pub fn trade_for_warm(&mut self, pool: &StackPool, st: Stack) -> Stack {
        if self.pool_id != pool.id || st.size != pool.default_size {
            return st;
        }
        match self.stacks.pop_back() {
            Some(warm) => {
                self.stacks.push_front(st);
                warm
            }
            None => st,
        }
    }

    /// Moves the older (colder) half of a full cache to the pool.
    #[cold]
    fn spill(&mut self, pool: &StackPool) {
        pool.put(self.stacks.drain(..CACHE_BATCH));
    }

    /// Returns every cached stack to the pool (when a P goes away).
    pub fn flush(&mut self, pool: &StackPool) {
        self.check_pool(pool);
        pool.put(self.stacks.drain(..));
    }
}
