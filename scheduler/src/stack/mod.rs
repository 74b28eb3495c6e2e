//! G stacks: one reserved region, a guard page per stack, recycled through
//! per-P caches.
//!
//! # The rooms, in reading order
//!
//! | file | items | role |
//! | --- | --- | --- |
//! | `size.rs` | [`DEFAULT_STACK_SIZE`], [`MIN_STACK_SIZE`], [`MAX_STACK_SIZE`] | sizes and their bounds; every size is rounded up to the page size |
//! | `guard.rs` | [`guard_kind`], [`GuardKind`] | guard pages: the start-up probe (can the kernel install guards without a mapping per stack?) and installing a guard |
//! | `limits.rs` | | what the process may still map: `vm.max_map_count`, `RLIMIT_AS` |
//! | `error.rs` | [`StackError`] | why a stack could not be made, with the cause spelled out |
//! | `pool.rs` | [`StackPool`], [`Stack`], [`StackConfig`] | all G stacks of a runtime (one per runtime, `Sync`): chunks, free lists, counters; an owned handle on one stack (freed explicitly, no `Drop`) |
//! | `cache.rs` | [`StackCache`], [`CACHE_MAX`], [`CACHE_BATCH`] | a P's private cache of default-size stacks: the lock-free hot path |
//! | `tests/` | | unit tests, one file per room (guards, pool, cache) |
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

mod cache;
mod error;
mod guard;
mod limits;
mod pool;
mod size;
#[cfg(test)]
mod tests;

pub use cache::{CACHE_BATCH, CACHE_MAX, StackCache};
pub use error::StackError;
pub use guard::{GuardKind, guard_kind};
pub use pool::{Stack, StackConfig, StackPool};
pub use size::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};

/// The calling thread's `errno`, for the rooms' error paths.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
