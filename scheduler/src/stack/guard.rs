//! Guard pages: the start-up probe that tells whether this kernel installs
//! `MADV_GUARD_INSTALL` guards (no mapping per stack) or the pool falls back
//! to `mprotect` (two mappings per stack), and the calls that install a
//! guard below a freshly carved slot. See the module docs of
//! [`crate::stack`] for why guards are made this way.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::size::page_size;

/// Guard pages below each stack. One page, as glibc gives threads: Rust
/// probes every page of a frame larger than a page (`probestack`), so a big
/// frame cannot jump over it.
pub(super) const GUARD_PAGES: usize = 1;

/// `madvise` advice: install guard markers (Linux 6.13; not in `libc`).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `madvise` advice: remove guard markers (Linux 6.13; not in `libc`).
const MADV_GUARD_REMOVE: libc::c_int = 103;

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
/// once without faulting (see [`crate::stack`], *Guards*), then cached.
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

/// Installs the `MADV_GUARD_INSTALL` guards (`len` bytes each) of several
/// fresh slots with one `process_madvise` call on this process
/// (`PIDFD_SELF`, Linux 6.15) and returns how many leading slots it
/// guarded; the caller guards the rest one by one with [`install`]. 0 when
/// there is only one slot, with mprotect guards, or where the call is
/// refused (older kernels, emulators). One call for a batch of 64 saves
/// ~150 ns of the ~600 ns a guard costs. Rejected: a pidfd from
/// `pidfd_open` (a forked child would advise its parent's memory through
/// the inherited fd).
///
/// # Safety
///
/// As for [`install`], for every slot.
pub(super) unsafe fn install_batched(kind: GuardKind, slots: &[usize], len: usize) -> usize {
    const PIDFD_SELF: libc::c_int = -10000;
    const MAX: usize = super::CACHE_BATCH;
    if kind != GuardKind::Madvise || slots.len() < 2 {
        return 0;
    }
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return 0;
    }
    let mut iov = [libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; MAX];
    let n = slots.len().min(MAX);
    for (v, &slot) in iov.iter_mut().zip(&slots[..n]) {
        *v = libc::iovec {
            iov_base: slot as *mut libc::c_void,
            iov_len: len,
        };
    }
    // SAFETY: each range is the guard range of a carved, unused slot (the
    // caller's contract); the iovecs are ours and valid for the call.
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
            super::errno(),
            libc::ENOSYS | libc::EBADF | libc::EINVAL | libc::EPERM
        ) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
        }
        return 0;
    }
    // Ranges are advised in order; a short count means the rest failed.
    (r as usize / len).min(n)
}

/// Guards the `len` bytes at `slot`. On failure returns the `errno` of the
/// last call, and the slot is untouched (still read-write): the caller
/// keeps it unused.
///
/// # Safety
///
/// `slot..slot + len` is the guard range at the low end of a carved slot of
/// a chunk the caller mapped, and nothing uses the slot yet (a guard makes
/// its pages unreadable and, with `MADV_GUARD_INSTALL`, discards them).
pub(super) unsafe fn install(kind: GuardKind, slot: usize, len: usize) -> Result<(), i32> {
    let p = slot as *mut libc::c_void;
    if kind == GuardKind::Madvise {
        // SAFETY: the guard range of an unused slot (the caller's
        // contract).
        if unsafe { libc::madvise(p, len, MADV_GUARD_INSTALL) } == 0 {
            return Ok(());
        }
        // The probe said yes but this call failed (e.g. no memory for a
        // page table): an mprotect guard is as good, only costlier.
    }
    // SAFETY: as above; PROT_NONE on the guard range of an unused slot.
    if unsafe { libc::mprotect(p, len, libc::PROT_NONE) } == 0 {
        return Ok(());
    }
    Err(super::errno())
}
