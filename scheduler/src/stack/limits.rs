//! What the process may still map: `vm.max_map_count` and the mappings in
//! use (which bound mprotect guards), and the address-space limit
//! (`RLIMIT_AS`, which bounds chunks). Read from `/proc` on cold paths only:
//! a new chunk, the first mprotect guard, an error.

use std::io::Read;

use super::size::page_size;

/// Mappings left to the rest of the process when guards are mprotect pages
/// (at most; an eighth of `vm.max_map_count` when that is small).
const MAP_HEADROOM: usize = 2048;

/// `/proc/sys/vm/max_map_count`, if readable.
pub(super) fn read_max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Mappings of this process (lines of `/proc/self/maps`), if readable.
/// Reads through a fixed buffer: the file can be megabytes long.
pub(super) fn count_maps() -> Option<usize> {
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

/// Mappings the pool may add for mprotect guards: `vm.max_map_count` less
/// the mappings the process has now and some headroom for the rest of the
/// process (thread stacks, `malloc` arenas, large allocations). `None` if
/// either number is unknown. Read once per pool, on the first mprotect
/// guard.
#[cold]
pub(super) fn mprotect_map_budget() -> Option<usize> {
    let max = usize::try_from(read_max_map_count()?).unwrap_or(usize::MAX);
    let now = count_maps()?;
    let headroom = MAP_HEADROOM.min(max / 8);
    Some(max.saturating_sub(now).saturating_sub(headroom))
}

/// `(RLIMIT_AS, bytes of address space in use)` if the process has an
/// address-space limit (`ulimit -v`). Reads `/proc/self/statm`: a cold path
/// (a new chunk, an error), never a hot one.
#[cold]
pub(super) fn address_space() -> Option<(u64, u64)> {
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

/// Whether the process has (nearly) as many mappings as `vm.max_map_count`
/// allows. Error path only: reads `/proc`.
#[cold]
pub(super) fn out_of_mappings() -> bool {
    match (read_max_map_count(), count_maps()) {
        (Some(max), Some(now)) => now as u64 + 16 >= max,
        _ => false,
    }
}
