//! G stacks: one reserved region, a guard page per stack, recycled through
//! per-P caches.
//!
//! # The pieces, in reading order
//!
//! | item | role |
//! | --- | --- |
//! | [`DEFAULT_STACK_SIZE`], [`MIN_STACK_SIZE`], [`MAX_STACK_SIZE`] | sizes; every size is rounded up to the page size |
//! | [`guard_kind`], [`GuardKind`] | the start-up probe: can the kernel install guards without a mapping per stack? |
//! | [`StackPool`] | all G stacks of a runtime (one per runtime, `Sync`): chunks, free lists, counters |
//! | [`Stack`] | an owned handle on one stack; freed explicitly, no `Drop` |
//! | [`StackCache`] | a P's private cache of default-size stacks: the lock-free hot path |
//! | [`StackError`] | why a stack could not be made, with the cause spelled out |
//!
//! # Layout
//!
//! Stacks are carved by a bump pointer from *chunks*: large read-write
//! `MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE` mappings. A chunk holds
//! stacks of a single size (its *size class*), so slot `i` of a chunk starts
//! at `base + i * stride` with `stride = guard + size`:
//!
//! ```text
//!   chunk base                                                      chunk end
//!   | guard | usable stack 0 | guard | usable stack 1 | ... | guard | usable |
//!   ^ slot 0 ^ bottom()      ^ top()                                         |
//!     1 page   size bytes, the G's sp starts at top() and grows down
//! ```
//!
//! Chunks of a size class grow geometrically, from about 4 MiB up to
//! `CHUNK_MAX` (1 GiB on 64-bit targets, 64 MiB on 32-bit ones), so a size
//! used once reserves little address space while the default size, which
//! most stacks have, needs few chunks (a million 256 KiB stacks take about
//! 260 of them). A stack larger than `CHUNK_MAX` gets a chunk of its own.
//! Under an address-space limit (`ulimit -v`, `RLIMIT_AS`) a chunk is at
//! most a quarter of the room left below the limit (less a reserve of
//! 1/16 of the limit, at most 64 MiB, for the rest of the process), and a
//! refused chunk is asked for again at half the length, down to one stack:
//! the last stacks that fit are handed out before
//! [`StackError::OutOfMemory`], which then says what would help.
//!
//! Untouched pages cost nothing: `MAP_NORESERVE` charges no commit, and a
//! page takes memory only once written. A G that uses 3 KiB of its 256 KiB
//! stack costs one page. Rust stacks cannot grow (a frame may hold pointers
//! into itself, so a stack cannot be moved the way Go copies them), hence the
//! generous default. Chunks are marked `MADV_NOHUGEPAGE` (and `MAP_STACK`,
//! which implies it from Linux 6.7): with transparent huge pages set to
//! `always`, the first touch of a stack's top page would otherwise fault in
//! 2 MiB where 4 KiB are used.
//!
//! # Guards
//!
//! Every stack has a guard page at its low end, so running off the bottom
//! faults instead of silently writing into the neighbour. Two ways to make
//! one, chosen once per pool:
//!
//! * [`GuardKind::Madvise`], `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13)
//!   puts a marker in the page tables. **No new mapping**, so a million
//!   guarded stacks fit under the default `vm.max_map_count` (65530).
//! * [`GuardKind::Mprotect`], `mprotect(PROT_NONE)` splits the chunk's
//!   mapping around each guard: two mappings per stack, so about 32,700
//!   stacks fit. This is where other stackful-coroutine crates panic; here
//!   the pool stops a little earlier, keeping headroom (`MAP_HEADROOM`
//!   mappings) so that the rest of the process can still create threads and
//!   `malloc` large blocks, and returns [`StackError::MapLimit`], which names
//!   `vm.max_map_count`.
//!
//! [`guard_kind`] probes support once, **without faulting**: write a byte to
//! a scratch page, install a guard on it, remove the guard, read the byte
//! back. A real kernel discarded the page when it installed the guard and
//! reads 0. qemu-user (7.2) returns success but installs nothing, so the
//! byte survives; older kernels return `EINVAL`. Either way: mprotect. A
//! stack is never handed out without its guard: a slot whose guard cannot be
//! installed goes back to its size class unused (`SizeClass::unguarded`) and
//! the allocation fails with an error.
//!
//! # Recycling, from hot to cold
//!
//! 1. [`StackCache`] (one per P, owned by it, no lock): up to [`CACHE_MAX`]
//!    default-size stacks. Allocation pops, freeing pushes; an empty cache
//!    takes [`CACHE_BATCH`] stacks from the pool in one lock acquisition, a
//!    full one gives half back. Stacks of other sizes bypass the cache.
//! 2. The pool's free lists (one per size class, under a `parking_lot`
//!    mutex; the cache makes this lock rare). Freed stacks are reused LIFO,
//!    the most recently used (cache-warm, resident) first.
//! 3. Fresh slots, carved by the bump pointer; the guard is installed
//!    *outside* the lock, so Ps carving at the same time do not serialise on
//!    the syscall. A fresh slot costs one `madvise` (or `mprotect`).
//!
//! # High-water mark
//!
//! A burst of Gs leaves many pooled stacks with resident pages. Idle Ms call
//! [`StackPool::scavenge`] (off the hot path), which keeps the
//! `cache_high_water` most recently freed pooled stacks as they are and gives
//! the pages of the others back with `madvise(MADV_DONTNEED)` on their usable
//! range (the guard stays). Released stacks move to a separate list, so they
//! are never released twice, and allocation takes them only when no resident
//! stack is left. `MADV_DONTNEED` rather than `MADV_FREE`: the memory leaves
//! RSS at once (what a user watching `top` expects after a burst), and a
//! reused page reads back as zero either way.
//!
//! # Counting live stacks
//!
//! `live` counts stacks handed out and not yet freed: stacks sitting in a
//! P's cache are *not* live, so a cache never makes [`StackError::LimitReached`]
//! fire early. With a finite `max_stacks`, every allocation (cached or not)
//! does one atomic read-modify-write on the pool's counter and checks the
//! limit exactly. Without a limit (the default) a cache keeps its share of
//! the count in a cache-padded slot of its own (`cache_live`), written only
//! by its owner with plain stores, and [`StackPool::live`] adds the slots up:
//! the hot path then touches no shared cache line at all.
//!
//! # Lock-free lookup
//!
//! The chunk table is append-only: fixed capacity (`MAX_CHUNKS`), each entry
//! `(base, len, stride)` written before the count that publishes it
//! (release/acquire). [`StackPool::guard_of`] answers "is this address in some
//! stack's guard page?" from a signal handler: atomics only, no lock, no
//! allocation.
//!
//! # Rejected designs
//!
//! * One `mmap` per stack: a mapping per stack (plus one per guard), and an
//!   `munmap` with its TLB shootdown on every free.
//! * mprotect guards everywhere: the map limit above.
//! * Unguarded stacks when guards run out: a stack overflow would then
//!   corrupt a neighbour's stack silently. An error is better.
//! * A lock-free global free list (Treiber stack): ABA-prone, and the
//!   per-P caches already take the global level off the hot path.

use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicIsize, AtomicU8, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::Read;

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

/// Default usable size of a G stack.
///
/// | build | 64-bit | 32-bit |
/// |---|---|---|
/// | release (`debug_assertions` off) | 256 KiB | 64 KiB |
/// | debug (`debug_assertions` on) | 1 MiB | 256 KiB |
///
/// Generous because Rust stacks cannot grow; cheap because untouched pages
/// cost neither memory nor commit charge (`MAP_NORESERVE`): a larger
/// default costs address space only. On 32-bit targets the address space
/// (about 3 GiB) is the scarce resource, hence the smaller sizes.
///
/// The rule: 4× in a debug build, because unoptimised frames are. Measured
/// (x86_64, rustc 1.95): a 48 KiB value sent and received on a channel by
/// ordinary code (`tx.send(v).unwrap()`, `rx.recv().unwrap()`) touches
/// about 49 KiB of stack in a release build and 250–350 KiB in a debug
/// build, where every temporary of a moved value keeps its own copy; a
/// 256 KiB debug default overflowed on such code. With 1 MiB a debug build
/// holds what a release build holds in 256 KiB.
#[cfg(all(target_pointer_width = "64", not(debug_assertions)))]
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;
/// Default usable size of a G stack (see the 64-bit release item's table).
#[cfg(all(target_pointer_width = "64", debug_assertions))]
pub const DEFAULT_STACK_SIZE: usize = 1 << 20;
/// Default usable size of a G stack (see the 64-bit release item's table).
#[cfg(all(not(target_pointer_width = "64"), not(debug_assertions)))]
pub const DEFAULT_STACK_SIZE: usize = 64 << 10;
/// Default usable size of a G stack (see the 64-bit release item's table).
#[cfg(all(not(target_pointer_width = "64"), debug_assertions))]
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// Smallest stack a G may ask for (16 KiB): less does not hold a few
/// formatting frames.
pub const MIN_STACK_SIZE: usize = 16 << 10;

/// Largest stack a G may ask for: 1 GiB (64 MiB on 32-bit targets).
#[cfg(target_pointer_width = "64")]
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Largest stack a G may ask for: 1 GiB (64 MiB on 32-bit targets).
#[cfg(not(target_pointer_width = "64"))]
pub const MAX_STACK_SIZE: usize = 64 << 20;

/// Largest chunk a size class maps at once.
#[cfg(target_pointer_width = "64")]
const CHUNK_MAX: usize = 1 << 30;
#[cfg(not(target_pointer_width = "64"))]
const CHUNK_MAX: usize = 64 << 20;

/// Size of a size class's first chunk (at least 16 stacks).
const CHUNK_FIRST: usize = 4 << 20;

/// Capacity of the chunk table (4 TiB of stacks on 64-bit targets, more
/// than the address space on 32-bit ones).
const MAX_CHUNKS: usize = 4096;

/// Guard pages below each stack. One page, as glibc gives threads: Rust
/// probes every page of a frame larger than a page (`probestack`), so a big
/// frame cannot jump over it.
const GUARD_PAGES: usize = 1;

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
const CACHE_SLOTS: usize = 256;

/// Mappings left to the rest of the process when guards are mprotect pages
/// (at most; an eighth of `vm.max_map_count` when that is small).
const MAP_HEADROOM: usize = 2048;

/// `madvise` advice: install guard markers (Linux 6.13; not in `libc`).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `madvise` advice: remove guard markers (Linux 6.13; not in `libc`).
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// The page size, read once.
fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    assert!(p.is_power_of_two(), "page_size: {p} is not a power of two");
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// `n` rounded up to a multiple of `page` (a power of two); `n` is at most
/// `MAX_STACK_SIZE`, so this cannot overflow.
#[inline]
fn round_up(n: usize, page: usize) -> usize {
    (n + page - 1) & !(page - 1)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The guard probe
// ---------------------------------------------------------------------------

/// How guard pages are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)`: a page-table marker, no mapping per
    /// stack (Linux ≥ 6.13).
    Madvise,
    /// `mprotect(PROT_NONE)`: splits the chunk's mapping, two mappings per
    /// stack; bounded by `vm.max_map_count`.
    Mprotect,
}

/// Whether this kernel really installs `MADV_GUARD_INSTALL` guards. Probed
/// once without faulting (see the module docs), then cached.
pub fn guard_kind() -> GuardKind {
    // 0: not probed yet, 1: Madvise, 2: Mprotect. Two threads probing at
    // once both get the same answer; the second store is harmless.
    static KIND: AtomicU8 = AtomicU8::new(0);
    match KIND.load(Ordering::Relaxed) {
        1 => GuardKind::Madvise,
        2 => GuardKind::Mprotect,
        _ => {
            let k = probe_guard();
            KIND.store(
                if k == GuardKind::Madvise { 1 } else { 2 },
                Ordering::Relaxed,
            );
            k
        }
    }
}

#[cold]
fn probe_guard() -> GuardKind {
    let pg = page_size();
    // SAFETY: a fresh private anonymous mapping; no other memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            2 * pg,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return GuardKind::Mprotect;
    }
    let byte = p.cast::<u8>();
    // SAFETY: page 0 of the mapping above is mapped read-write and ours.
    unsafe { byte.write_volatile(0x5a) };
    let mut kind = GuardKind::Mprotect;
    // SAFETY: madvise on page 0 of our own mapping; nobody else uses it.
    if unsafe { libc::madvise(p, pg, MADV_GUARD_INSTALL) } == 0 {
        // The page is read only once the guard is known to be gone: reading
        // a guarded page would fault, and the probe must never fault.
        // SAFETY: as above.
        let removed = unsafe { libc::madvise(p, pg, MADV_GUARD_REMOVE) } == 0;
        // SAFETY: the guard was removed (or never installed), so page 0 is a
        // plain read-write page of our mapping again.
        if removed && unsafe { byte.read_volatile() } == 0 {
            kind = GuardKind::Madvise;
        }
    }
    // SAFETY: unmapping exactly the mapping made above, which nothing else
    // refers to.
    unsafe { libc::munmap(p, 2 * pg) };
    kind
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a stack could not be made. Nothing half-made is left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackError {
    /// Guards are `mprotect` pages (one mapping each) and the process ran
    /// into `vm.max_map_count`.
    MapLimit {
        /// Stacks in use when it happened.
        live: usize,
        /// `/proc/sys/vm/max_map_count`, read when the error was made (if
        /// readable).
        max_map_count: Option<u64>,
    },
    /// `mmap` could not reserve address space for a new chunk, even for a
    /// single stack.
    OutOfMemory {
        /// Bytes asked of the kernel (the last, smallest request).
        requested: usize,
        /// `errno` of the failed call.
        errno: i32,
        /// The address-space limit (`RLIMIT_AS`, `ulimit -v`) in bytes and
        /// the address space in use when it happened, if there is a limit.
        address_space: Option<(u64, u64)>,
    },
    /// The configured limit on live stacks (`max_stacks`) was reached.
    LimitReached {
        /// The limit.
        limit: usize,
    },
    /// The size is outside `MIN_STACK_SIZE..=MAX_STACK_SIZE`.
    InvalidSize {
        /// What was asked for.
        requested: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
}

impl StackError {
    /// A `MapLimit` error; reads `vm.max_map_count` (an error path, never a
    /// hot one).
    #[cold]
    fn map_limit(live: usize) -> StackError {
        StackError::MapLimit {
            live,
            max_map_count: read_max_map_count(),
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::MapLimit {
                live,
                max_map_count,
            } => {
                write!(
                    f,
                    "cannot guard another G stack ({live} in use): the process is at its limit of memory \
                     mappings, vm.max_map_count (now "
                )?;
                match max_map_count {
                    Some(n) => write!(f, "{n}")?,
                    None => f.write_str("unknown")?,
                }
                f.write_str(
                    "); guard pages made with mprotect need a mapping of their own per stack",
                )?;
                // The probe result is cached: no syscall here.
                if guard_kind() == GuardKind::Madvise {
                    f.write_str(
                        " (mprotect guards were forced; this kernel has MADV_GUARD_INSTALL, which \
                         needs none)",
                    )
                } else {
                    f.write_str(
                        ", because this kernel lacks MADV_GUARD_INSTALL (Linux 6.13); raise \
                         vm.max_map_count or run on a newer kernel",
                    )
                }
            }
            StackError::OutOfMemory {
                requested,
                errno,
                address_space,
            } => {
                write!(
                    f,
                    "cannot reserve {requested} bytes of address space for G stacks: mmap failed with {}; ",
                    std::io::Error::from_raw_os_error(*errno)
                )?;
                match address_space {
                    Some((limit, used)) => write!(
                        f,
                        "the address-space limit (ulimit -v, RLIMIT_AS) is {} KiB and {} KiB are in use; \
                         raise ulimit -v, or make stacks smaller (Builder::stack_size, GORT_STACK_SIZE) \
                         so that more fit",
                        limit >> 10,
                        used >> 10
                    ),
                    None => f.write_str(
                        "the address space (a 32-bit process) or the overcommit policy \
                         (vm.overcommit_memory) allows no more; make stacks smaller \
                         (Builder::stack_size, GORT_STACK_SIZE) so that more fit",
                    ),
                }
            }
            StackError::LimitReached { limit } => write!(
                f,
                "the limit of {limit} live G stacks is reached (max_stacks)"
            ),
            StackError::InvalidSize {
                requested,
                min,
                max,
            } => write!(
                f,
                "invalid G stack size {requested} bytes: expected {min} to {max} bytes"
            ),
        }
    }
}

impl std::error::Error for StackError {}

/// `/proc/sys/vm/max_map_count`, if readable.
fn read_max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Mappings of this process (lines of `/proc/self/maps`), if readable.
/// Reads through a fixed buffer: the file can be megabytes long.
fn count_maps() -> Option<usize> {
    let mut f = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 16 << 10];
    let mut lines = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

// ---------------------------------------------------------------------------
// Stack, StackConfig
// ---------------------------------------------------------------------------

/// An owned G stack: a usable range with a guard below it.
///
/// A plain handle: dropping it does nothing (the memory stays with the pool
/// and is lost to reuse); give it back with [`StackPool::free`] or
/// [`StackCache::free`].
#[derive(Debug)]
pub struct Stack {
    bottom: usize,
    size: usize,
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
    fn used(self) -> Stack {
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
    /// Usable bytes of the default stack: the size [`StackCache`] serves.
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

// ---------------------------------------------------------------------------
// StackPool
// ---------------------------------------------------------------------------

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
struct PoolSynced {
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

/// Pool ids start at 1; 0 marks an unbound [`StackCache`].
static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

/// All G stacks of a runtime: chunks, free lists per size, counters.
/// `Sync`: shared by every P; see the module docs.
pub struct StackPool {
    /// Tells caches apart from pools they were not bound to.
    id: usize,
    cfg: StackConfig,
    kind: GuardKind,
    /// Guard bytes per stack (`GUARD_PAGES` pages).
    guard: usize,
    page: usize,
    /// The default size rounded to pages; `usize::MAX` if invalid (then the
    /// cache path reports `InvalidSize`).
    default_size: usize,
    /// `max_stacks != usize::MAX`: every allocation checks `live`.
    limited: bool,
    synced: Mutex<PoolSynced>,
    /// Stacks in use, as counted by the pool and (with a limit) by caches.
    /// Wrapping: without a limit, a stack allocated through a cache and
    /// freed to the pool makes this go "below zero"; `live()` adds the cache
    /// slots back. Relaxed: a count, it publishes no data.
    live: AtomicUsize,
    /// Per-cache shares of the live count (unlimited pools only), each
    /// written only by the cache that owns it.
    cache_live: Box<[CachePadded<AtomicIsize>]>,
    /// Slots handed out (may exceed `CACHE_SLOTS`: the rest share `live`).
    n_cache_slots: AtomicUsize,
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
        let default_size = if (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&cfg.default_size) {
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
            synced: Mutex::new(PoolSynced {
                classes,
                map_budget: None,
            }),
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
    fn round_size(&self, size: usize) -> Result<usize, StackError> {
        if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
            return Err(StackError::InvalidSize {
                requested: size,
                min: MIN_STACK_SIZE,
                max: MAX_STACK_SIZE,
            });
        }
        Ok(round_up(size, self.page))
    }

    /// Whether a request for `size` is served at the default size.
    #[inline]
    fn is_default(&self, size: usize) -> bool {
        size == self.default_size
            || ((MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size)
                && round_up(size, self.page) == self.default_size)
    }

    /// Counts one more stack in use on the shared counter, checking the
    /// limit.
    #[inline]
    fn count_alloc(&self) -> Result<(), StackError> {
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
    /// [`StackCache`] instead.
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
    fn put(&self, stacks: impl Iterator<Item = Stack>) {
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
    fn take(
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

    /// Installs the `MADV_GUARD_INSTALL` guards of several fresh slots with
    /// one `process_madvise` call on this process (`PIDFD_SELF`, Linux
    /// 6.15) and returns how many leading slots it guarded; the caller
    /// guards the rest one by one. 0 when there is only one slot, with
    /// mprotect guards, or where the call is refused (older kernels,
    /// emulators). One call for a batch of 64 saves ~150 ns of the ~600 ns
    /// a guard costs. Rejected: a pidfd from `pidfd_open` (a forked child
    /// would advise its parent's memory through the inherited fd).
    fn install_guards_batched(&self, slots: &[usize]) -> usize {
        const PIDFD_SELF: libc::c_int = -10000;
        if self.kind != GuardKind::Madvise || slots.len() < 2 {
            return 0;
        }
        static UNSUPPORTED: core::sync::atomic::AtomicBool =
            core::sync::atomic::AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return 0;
        }
        let mut iov = [libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        }; CACHE_BATCH];
        let n = slots.len().min(CACHE_BATCH);
        for (v, &slot) in iov.iter_mut().zip(&slots[..n]) {
            *v = libc::iovec {
                iov_base: slot as *mut libc::c_void,
                iov_len: self.guard,
            };
        }
        // SAFETY: each range is the guard range of a carved, unused slot of
        // a chunk this pool mapped (as for `install_guard`); the iovecs are
        // ours and valid for the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                n,
                MADV_GUARD_INSTALL,
                0 as libc::c_uint,
            )
        };
        if r < 0 {
            if matches!(
                errno(),
                libc::ENOSYS | libc::EBADF | libc::EINVAL | libc::EPERM
            ) {
                UNSUPPORTED.store(true, Ordering::Relaxed);
            }
            return 0;
        }
        // Ranges are advised in order; a short count means the rest failed.
        (r as usize / self.guard).min(n)
    }

    /// Guards the slot whose guard pages start at `slot`. On failure the
    /// slot is untouched (still read-write) and the caller keeps it unused.
    fn install_guard(&self, slot: usize) -> Result<(), StackError> {
        let p = slot as *mut libc::c_void;
        if self.kind == GuardKind::Madvise {
            // SAFETY: `slot` starts a carved, unused slot of a chunk this
            // pool mapped; the guard range lies inside it.
            if unsafe { libc::madvise(p, self.guard, MADV_GUARD_INSTALL) } == 0 {
                return Ok(());
            }
            // The probe said yes but this call failed (e.g. no memory for a
            // page table): an mprotect guard is as good, only costlier.
        }
        // SAFETY: as above; PROT_NONE on the guard range of an unused slot.
        if unsafe { libc::mprotect(p, self.guard, libc::PROT_NONE) } == 0 {
            return Ok(());
        }
        match errno() {
            libc::ENOMEM => Err(self.map_limit()),
            errno => Err(StackError::OutOfMemory {
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
    fn owns(&self, st: &Stack) -> bool {
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

/// Mappings the pool may add for mprotect guards: `vm.max_map_count` less
/// the mappings the process has now and some headroom for the rest of the
/// process (thread stacks, `malloc` arenas, large allocations). `None` if
/// either number is unknown. Read once per pool, on the first mprotect
/// guard.
#[cold]
fn mprotect_map_budget() -> Option<usize> {
    let max = usize::try_from(read_max_map_count()?).unwrap_or(usize::MAX);
    let now = count_maps()?;
    let headroom = MAP_HEADROOM.min(max / 8);
    Some(max.saturating_sub(now).saturating_sub(headroom))
}

/// Whether the process has (nearly) as many mappings as `vm.max_map_count`
/// allows. Error path only: reads `/proc`.
#[cold]
/// `(RLIMIT_AS, bytes of address space in use)` if the process has an
/// address-space limit (`ulimit -v`). Reads `/proc/self/statm`: a cold path
/// (a new chunk, an error), never a hot one.
fn address_space() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer for getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits on i686
    let limit = lim.rlim_cur as u64;
    Some((limit, pages * page_size() as u64))
}

fn out_of_mappings() -> bool {
    match (read_max_map_count(), count_maps()) {
        (Some(max), Some(now)) => now as u64 + 16 >= max,
        _ => false,
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

// ---------------------------------------------------------------------------
// StackCache
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn under_qemu() -> bool {
        std::env::var_os("GORT_UNDER_QEMU").is_some()
    }

    /// Runs `f` in a forked child with a hard time bound. Returns the
    /// child's wait status and what `f` returned (empty if the child died
    /// before returning).
    fn in_child(f: impl FnOnce() -> String) -> (libc::c_int, String) {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only runs `f` (syscalls and allocation, which
        // glibc makes fork-safe), writes to the pipe and calls _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| "child panicked".to_owned());
            // SAFETY: writing our own buffer to our pipe; _exit skips the
            // parent's atexit handlers and test harness state.
            unsafe {
                libc::write(fds[1], out.as_ptr().cast(), out.len());
                libc::_exit(0);
            }
        }
        // SAFETY: closing the write end we do not use.
        unsafe { libc::close(fds[1]) };
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("child did not finish in time");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into our buffer from our pipe.
            let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        // SAFETY: closing our read end.
        unsafe { libc::close(fds[0]) };
        (status, String::from_utf8_lossy(&out).into_owned())
    }

    /// Whether the page holding `addr` is resident.
    fn resident(addr: usize) -> bool {
        let pg = page_size();
        let mut v = 0u8;
        // SAFETY: mincore on one page of a mapping we own, one result byte.
        let r = unsafe { libc::mincore((addr & !(pg - 1)) as *mut libc::c_void, pg, &mut v) };
        assert_eq!(r, 0, "mincore failed");
        v & 1 == 1
    }

    fn touch(st: &Stack, v: u64) {
        // SAFETY: the stack is ours and its usable range read-write.
        unsafe {
            ((st.top() - 8) as *mut u64).write_volatile(v);
            (st.bottom() as *mut u8).write_volatile(1);
        }
    }

    fn peek(st: &Stack) -> u64 {
        // SAFETY: as in `touch`.
        unsafe { ((st.top() - 8) as *const u64).read_volatile() }
    }

    #[test]
    fn probe_matches_the_platform() {
        let kind = guard_kind();
        assert_eq!(guard_kind(), kind, "the probe result is cached");
        if under_qemu() {
            assert_eq!(
                kind,
                GuardKind::Mprotect,
                "qemu-user installs no madvise guards"
            );
        } else {
            // This machine runs Linux 6.18 natively; a kernel older than 6.13
            // would (rightly) say Mprotect.
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let mut v = release
                .trim()
                .split(['.', '-'])
                .map(|x| x.parse::<u32>().unwrap_or(0));
            let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
            if (major, minor) >= (6, 13) {
                assert_eq!(
                    kind,
                    GuardKind::Madvise,
                    "kernel {release} has MADV_GUARD_INSTALL"
                );
            } else {
                assert_eq!(
                    kind,
                    GuardKind::Mprotect,
                    "kernel {release} lacks MADV_GUARD_INSTALL"
                );
            }
        }
        let forced = StackPool::new(StackConfig {
            force_mprotect: true,
            ..StackConfig::default()
        });
        assert_eq!(forced.guard_kind(), GuardKind::Mprotect);
        assert_eq!(StackPool::new(StackConfig::default()).guard_kind(), kind);
    }

    #[test]
    fn alloc_free_reuse_and_rounding() {
        let pg = page_size();
        let pool = StackPool::new(StackConfig {
            default_size: 64 << 10,
            ..StackConfig::default()
        });
        let a = pool.alloc(64 << 10).unwrap();
        assert_eq!(a.size(), 64 << 10);
        assert_eq!(a.top() - a.bottom(), a.size());
        assert_eq!(a.guard(), a.bottom() - pg..a.bottom());
        assert_eq!(a.top() % pg, 0);
        touch(&a, 7);
        assert!(pool.guard_of(a.guard().start));
        assert!(pool.guard_of(a.guard().end - 1));
        assert!(!pool.guard_of(a.bottom()));
        assert!(!pool.guard_of(a.top() - 1));
        assert!(!pool.guard_of(&pool as *const _ as usize));
        assert_eq!(pool.live(), 1);
        let bottom = a.bottom();
        pool.free(a);
        assert_eq!((pool.live(), pool.pooled()), (0, 1));
        let b = pool.alloc(64 << 10).unwrap();
        assert_eq!(b.bottom(), bottom, "a freed stack is reused");
        assert_eq!(peek(&b), 7, "a reused stack is not cleared");
        assert_eq!((pool.live(), pool.pooled()), (1, 0));
        // Sizes are rounded up to pages; each size has its own class.
        let odd = pool.alloc(100_000).unwrap();
        assert_eq!(odd.size(), round_up(100_000, pg));
        assert!(pool.guard_of(odd.guard().start));
        touch(&odd, 1);
        let odd_bottom = odd.bottom();
        pool.free(odd);
        let c = pool.alloc(64 << 10).unwrap();
        assert_ne!(c.bottom(), odd_bottom, "stacks are reused per size");
        let again = pool.alloc(round_up(100_000, pg)).unwrap();
        assert_eq!(again.bottom(), odd_bottom);
        let big = pool.alloc(MAX_STACK_SIZE).unwrap();
        assert_eq!(big.size(), MAX_STACK_SIZE);
        touch(&big, 3);
        assert!(pool.guard_of(big.guard().start));
        for s in [b, c, again, big] {
            pool.free(s);
        }
        assert_eq!((pool.live(), pool.pooled()), (0, 4));
    }

    #[test]
    fn invalid_sizes_are_refused() {
        let pool = StackPool::new(StackConfig::default());
        let mut cache = StackCache::new();
        for bad in [0, 1, MIN_STACK_SIZE - 1, MAX_STACK_SIZE + 1, usize::MAX] {
            let want = StackError::InvalidSize {
                requested: bad,
                min: MIN_STACK_SIZE,
                max: MAX_STACK_SIZE,
            };
            assert_eq!(pool.alloc(bad).unwrap_err(), want);
            assert_eq!(cache.alloc(&pool, bad).unwrap_err(), want);
            let msg = want.to_string();
            assert!(
                msg.contains(&bad.to_string()) && msg.contains(&MIN_STACK_SIZE.to_string()),
                "{msg}"
            );
        }
        assert_eq!(pool.live(), 0, "failed allocations are not counted");
        // An invalid default size is not corrected: allocating it fails.
        let zero = StackPool::new(StackConfig {
            default_size: 0,
            ..StackConfig::default()
        });
        assert!(matches!(
            zero.alloc(0),
            Err(StackError::InvalidSize { requested: 0, .. })
        ));
        assert!(matches!(
            StackCache::new().alloc(&zero, 0),
            Err(StackError::InvalidSize { requested: 0, .. })
        ));
        assert_eq!(zero.live(), 0);
    }

    #[test]
    fn the_limit_on_live_stacks() {
        let pool = StackPool::new(StackConfig {
            max_stacks: 10,
            default_size: MIN_STACK_SIZE,
            ..StackConfig::default()
        });
        let v: Vec<_> = (0..10)
            .map(|_| pool.alloc(MIN_STACK_SIZE).unwrap())
            .collect();
        let e = pool.alloc(MIN_STACK_SIZE).unwrap_err();
        assert_eq!(e, StackError::LimitReached { limit: 10 });
        assert!(e.to_string().contains("10 live G stacks"), "{e}");
        let mut cache = StackCache::new();
        assert_eq!(cache.alloc(&pool, MIN_STACK_SIZE).unwrap_err(), e);
        assert_eq!(pool.live(), 10);
        for s in v {
            pool.free(s);
        }
        // Stacks in a cache do not count: a cache that filled itself and
        // took back its stacks does not starve another.
        let a: Vec<_> = (0..10)
            .map(|_| cache.alloc(&pool, MIN_STACK_SIZE).unwrap())
            .collect();
        assert!(cache.alloc(&pool, MIN_STACK_SIZE).is_err());
        for s in a {
            cache.free(&pool, s);
        }
        assert_eq!(pool.live(), 0);
        let mut other = StackCache::new();
        let b: Vec<_> = (0..10)
            .map(|_| other.alloc(&pool, MIN_STACK_SIZE).unwrap())
            .collect();
        assert!(matches!(
            other.alloc(&pool, MIN_STACK_SIZE),
            Err(StackError::LimitReached { limit: 10 })
        ));
        assert_eq!(pool.live(), 10);
        for s in b {
            pool.free(s);
        }
        assert_eq!(pool.live(), 0);
    }

    /// Symptom: a stack overflow silently writes into the neighbouring
    /// stack instead of faulting.
    #[test]
    fn the_guard_really_faults() {
        for force_mprotect in [false, true] {
            let pool = StackPool::new(StackConfig {
                force_mprotect,
                ..StackConfig::default()
            });
            // Two neighbours: the upper one's guard sits right above the
            // lower one's top.
            let low = pool.alloc(DEFAULT_STACK_SIZE).unwrap();
            let high = pool.alloc(DEFAULT_STACK_SIZE).unwrap();
            assert_eq!(high.guard().start, low.top());
            let (lo_top, guard) = (low.top(), high.guard());
            let (status, out) = in_child(move || {
                // SAFETY: the top of the lower stack is usable; then the
                // write one byte above it, into the guard, must fault.
                unsafe {
                    ((lo_top - 1) as *mut u8).write_volatile(1);
                    (guard.start as *mut u8).write_volatile(1);
                }
                "wrote into the guard".to_owned()
            });
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
                "{:?} guard did not fault: status {status:#x}, child said {out:?}",
                pool.guard_kind()
            );
            // The parent is unaffected and the stacks still work.
            touch(&low, 1);
            touch(&high, 1);
            pool.free(low);
            pool.free(high);
        }
    }

    /// Symptom: with mprotect guards, stack number ~32,750 panics (or the
    /// process can no longer create threads) instead of a clear error.
    #[test]
    fn mprotect_guards_stop_at_the_map_limit_with_a_clear_error() {
        if under_qemu() {
            eprintln!(
                "skipped under qemu-user: tens of thousands of mprotect calls take minutes there"
            );
            return;
        }
        let (status, out) = in_child(|| {
            let pool = StackPool::new(StackConfig {
                default_size: MIN_STACK_SIZE,
                force_mprotect: true,
                ..StackConfig::default()
            });
            let maps_before = count_maps().unwrap_or(0);
            let mut v = Vec::new();
            let err = loop {
                match pool.alloc(MIN_STACK_SIZE) {
                    Ok(s) => v.push(s),
                    Err(e) => break e,
                }
                if v.len() > 200_000 {
                    return "no error after 200000 stacks".to_owned();
                }
            };
            let maps_grown = count_maps().unwrap_or(0).saturating_sub(maps_before);
            // The headroom left: this process can still start a thread.
            let thread = std::thread::spawn(|| 5).join().map_or("failed", |_| "ok");
            // Freed stacks are reused without a new mapping.
            pool.free(v.pop().unwrap());
            let reuse = if pool.alloc(MIN_STACK_SIZE).is_ok() {
                "ok"
            } else {
                "failed"
            };
            format!(
                "count={}\nmaps_grown={maps_grown}\nthread={thread}\nreuse={reuse}\ndebug={err:?}\nerror={err}",
                v.len() + 1
            )
        });
        assert!(libc::WIFEXITED(status), "child died: {status:#x}: {out}");
        let val = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|l| l.strip_prefix('=')))
                .unwrap_or_else(|| panic!("no {k} in {out:?}"))
                .to_owned()
        };
        let count: usize = val("count").parse().unwrap();
        assert!(val("debug").starts_with("MapLimit"), "{out}");
        assert!(val("error").contains("vm.max_map_count"), "{out}");
        eprintln!("{out}");
        let max = read_max_map_count().unwrap_or(65530);
        assert!(
            count as u64 > max * 30_000 / 65_530,
            "only {count} stacks: {out}"
        );
        // The guards really are mappings (the pool's budget is not what
        // stopped a guard-less loop): two per stack, the guard and the
        // usable range split off the chunk.
        let grown: usize = val("maps_grown").parse().unwrap();
        assert!(
            grown >= 2 * count - 10,
            "{count} stacks added only {grown} mappings"
        );
        assert_eq!(val("thread"), "ok", "no headroom left: {out}");
        assert_eq!(val("reuse"), "ok", "{out}");
    }

    /// Symptom: madvise guards still add a mapping per stack, so the map
    /// limit comes back.
    #[test]
    fn madvise_guards_fit_a_hundred_thousand_stacks() {
        if guard_kind() != GuardKind::Madvise {
            eprintln!(
                "skipped: no MADV_GUARD_INSTALL here ({})",
                if under_qemu() {
                    "qemu-user ignores it"
                } else {
                    "kernel older than 6.13"
                }
            );
            return;
        }
        let pool = StackPool::new(StackConfig {
            default_size: MIN_STACK_SIZE,
            ..StackConfig::default()
        });
        let maps_before = count_maps().unwrap();
        let v: Vec<_> = (0..100_000)
            .map(|_| pool.alloc(MIN_STACK_SIZE).unwrap())
            .collect();
        let maps_after = count_maps().unwrap();
        assert_eq!(pool.live(), 100_000);
        assert!(
            maps_after < maps_before + 1000,
            "mappings grew from {maps_before} to {maps_after}"
        );
        assert!(pool.guard_of(v[99_999].guard().start));
        for s in v {
            pool.free(s);
        }
        assert_eq!(pool.live(), 0);
    }

    #[test]
    fn scavenge_releases_beyond_the_high_water_mark() {
        let pool = StackPool::new(StackConfig {
            cache_high_water: 2,
            ..StackConfig::default()
        });
        let v: Vec<_> = (0..6)
            .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        for s in &v {
            touch(s, 7);
            assert!(resident(s.top() - 8));
        }
        let tops: Vec<usize> = v.iter().map(Stack::top).collect();
        for s in v {
            pool.free(s);
        }
        assert_eq!(pool.scavenge(), 4);
        assert_eq!(pool.scavenge(), 0, "released stacks are not released twice");
        assert_eq!((pool.pooled(), pool.released()), (6, 4));
        // The two freed last (still warm) stay resident.
        if under_qemu() {
            eprintln!("residency not checked: qemu-user 7.2 ignores MADV_DONTNEED");
        } else {
            let gone: Vec<bool> = tops.iter().map(|&t| !resident(t - 8)).collect();
            assert_eq!(gone, [true, true, true, true, false, false]);
        }
        // Allocation prefers resident stacks, then takes released ones,
        // which work and read zero.
        let all: Vec<_> = (0..6)
            .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        let first: Vec<usize> = all[..2].iter().map(Stack::top).collect();
        assert_eq!(first, [tops[5], tops[4]]);
        for s in &all[2..] {
            if !under_qemu() {
                assert_eq!(peek(s), 0, "a released page reads zero");
            }
            touch(s, 9);
            assert_eq!(peek(s), 9);
        }
        assert_eq!((pool.pooled(), pool.released()), (0, 0));
        for s in all {
            pool.free(s);
        }
    }

    #[test]
    fn the_cache_trades_half_batches_with_the_pool() {
        let pool = StackPool::new(StackConfig::default());
        let mut cache = StackCache::new();
        let a = cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(cache.len(), CACHE_BATCH - 1, "a refill takes half a cache");
        assert_eq!((pool.live(), pool.pooled()), (1, 0));
        cache.free(&pool, a);
        assert_eq!((cache.len(), pool.live()), (CACHE_BATCH, 0));
        // 2 * CACHE_MAX stacks at once: more refills.
        let many: Vec<_> = (0..2 * CACHE_MAX)
            .map(|_| cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap())
            .collect();
        assert_eq!(pool.live(), 2 * CACHE_MAX);
        for s in many {
            cache.free(&pool, s);
        }
        // The cache filled up, then spilled half back twice.
        assert_eq!(pool.live(), 0);
        assert!(cache.len() <= CACHE_MAX);
        assert_eq!(cache.len() + pool.pooled(), 2 * CACHE_MAX);
        assert!(pool.pooled() >= CACHE_BATCH);
        // Other sizes bypass the cache.
        let before = cache.len();
        let odd = cache.alloc(&pool, 2 * DEFAULT_STACK_SIZE).unwrap();
        cache.free(&pool, odd);
        assert_eq!(cache.len(), before);
        // A size that rounds to the default one is the default size.
        let r = cache.alloc(&pool, DEFAULT_STACK_SIZE - 100).unwrap();
        assert_eq!(r.size(), DEFAULT_STACK_SIZE);
        assert_eq!(cache.len(), before - 1);
        cache.free(&pool, r);
        cache.flush(&pool);
        assert!(cache.is_empty());
        assert_eq!(pool.pooled(), 2 * CACHE_MAX + 1);
    }

    /// Symptom: a G's first run keeps touching cold stacks although its P
    /// just freed a warm one, or the trade loses or duplicates a stack.
    #[test]
    fn a_first_run_trades_an_untouched_stack_for_the_warmest() {
        let pool = StackPool::new(StackConfig::default());
        let mut spawner = StackCache::new();
        let mut runner = StackCache::new();
        let fresh = spawner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        assert!(fresh.untouched(), "a freshly carved stack is untouched");
        // The runner has nothing to trade: the G keeps its stack.
        let kept = runner.trade_for_warm(&pool, fresh);
        assert!(kept.untouched());
        let kept_bottom = kept.bottom();
        runner.free(&pool, kept);
        // A freed stack is no longer untouched, and the next fresh stack is
        // traded for it; the untouched one waits at the cold end.
        let fresh = spawner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        let fresh_bottom = fresh.bottom();
        let warm = runner.trade_for_warm(&pool, fresh);
        assert_eq!(
            warm.bottom(),
            kept_bottom,
            "not the most recently freed stack"
        );
        assert!(!warm.untouched());
        assert_eq!(runner.len(), 1);
        assert_eq!(pool.live(), 1, "a trade changes no count");
        runner.free(&pool, warm);
        // The warm one is handed out first; the untouched one after it.
        let a = runner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        let b = runner.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        assert_eq!((a.bottom(), b.bottom()), (kept_bottom, fresh_bottom));
        assert!(b.untouched());
        // Other sizes are not traded.
        let odd = spawner.alloc(&pool, 2 * DEFAULT_STACK_SIZE).unwrap();
        let odd_bottom = odd.bottom();
        runner.free(&pool, a);
        let odd = runner.trade_for_warm(&pool, odd);
        assert_eq!(odd.bottom(), odd_bottom);
        for st in [b, odd] {
            runner.free(&pool, st);
        }
        runner.flush(&pool);
        spawner.flush(&pool);
        assert_eq!(pool.live(), 0);
    }

    /// Symptom: the hot path takes the pool lock after all.
    #[test]
    fn the_cache_hot_path_takes_no_lock() {
        let pool = std::sync::Arc::new(StackPool::new(StackConfig::default()));
        let mut cache = StackCache::new();
        let warm = cache.alloc(&pool, DEFAULT_STACK_SIZE).unwrap();
        cache.free(&pool, warm);
        let locked = pool.synced.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = pool.clone();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                let s = cache.alloc(&p2, DEFAULT_STACK_SIZE).unwrap();
                cache.free(&p2, s);
            }
            tx.send(()).unwrap();
        });
        let r = rx.recv_timeout(Duration::from_secs(10));
        drop(locked);
        assert!(
            r.is_ok(),
            "alloc/free through a warm cache waited for the pool lock"
        );
    }

    #[test]
    fn live_counts_across_caches_and_the_pool() {
        let pool = StackPool::new(StackConfig::default());
        let mut c1 = StackCache::new();
        let mut c2 = StackCache::new();
        let v: Vec<_> = (0..40)
            .map(|_| c1.alloc(&pool, DEFAULT_STACK_SIZE).unwrap())
            .collect();
        assert_eq!(pool.live(), 40);
        let mut it = v.into_iter();
        // Freed on another P, and straight to the pool (an M without a P).
        for s in it.by_ref().take(20) {
            c2.free(&pool, s);
        }
        assert_eq!(pool.live(), 20);
        for s in it {
            pool.free(s);
        }
        assert_eq!(pool.live(), 0);
    }

    #[test]
    #[should_panic(expected = "second StackPool")]
    fn a_cache_serves_one_pool() {
        let p1 = StackPool::new(StackConfig::default());
        let p2 = StackPool::new(StackConfig::default());
        let mut cache = StackCache::new();
        let s = cache.alloc(&p1, DEFAULT_STACK_SIZE).unwrap();
        cache.free(&p1, s);
        let _ = cache.alloc(&p2, DEFAULT_STACK_SIZE);
    }

    #[test]
    fn out_of_address_space_is_an_error_naming_it() {
        if under_qemu() {
            eprintln!("skipped under qemu-user: RLIMIT_AS would limit qemu itself");
            return;
        }
        let (status, out) = in_child(|| {
            let pool = StackPool::new(StackConfig::default());
            // Room for the process as it is, plus 64 MiB: less than one
            // largest stack.
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
            let lim = libc::rlimit {
                rlim_cur: (pages * page_size() as u64 + (64 << 20)) as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: lowering the child's own soft limit.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
            let mut v = Vec::new();
            let err = loop {
                match pool.alloc(MAX_STACK_SIZE) {
                    Ok(s) => v.push(s),
                    Err(e) => break e,
                }
            };
            format!("{err:?}\n{err}\nlive={}", pool.live())
        });
        assert!(libc::WIFEXITED(status), "child died: {status:#x}: {out}");
        assert!(out.starts_with("OutOfMemory"), "{out}");
        assert!(out.contains(&format!("os error {}", libc::ENOMEM)), "{out}");
        assert!(out.contains("address-space limit (ulimit -v"), "{out}");
    }
}
