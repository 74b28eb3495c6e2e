//! Stack sizes: the default, the bounds every request is checked
//! against, the chunks a size class is carved from, and the page rounding
//! every size goes through.

use super::StackError;
use core::sync::atomic::{AtomicUsize, Ordering};

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
pub(super) const CHUNK_MAX: usize = 1 << 30;
#[cfg(not(target_pointer_width = "64"))]
pub(super) const CHUNK_MAX: usize = 64 << 20;

/// Size of a size class's first chunk (at least 16 stacks).
pub(super) const CHUNK_FIRST: usize = 4 << 20;

/// Capacity of the chunk table (4 TiB of stacks on 64-bit targets, more
/// than the address space on 32-bit ones).
pub(super) const MAX_CHUNKS: usize = 4096;

/// The page size, read once.
pub(super) fn page_size() -> usize {
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
pub(super) fn round_up(n: usize, page: usize) -> usize {
    (n + page - 1) & !(page - 1)
}

/// Whether a G may ask for a stack of `size` bytes:
/// `MIN_STACK_SIZE..=MAX_STACK_SIZE`.
#[inline]
pub(super) fn is_valid(size: usize) -> bool {
    (MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size)
}

/// `size` checked against the bounds and rounded up to the page size.
#[inline]
pub(super) fn checked(size: usize, page: usize) -> Result<usize, StackError> {
    if !is_valid(size) {
        return Err(StackError::InvalidSize {
            requested: size,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE,
        });
    }
    Ok(round_up(size, page))
}
