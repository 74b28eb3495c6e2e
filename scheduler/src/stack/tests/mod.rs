//! Unit tests of the stack rooms, one file per room, with the helpers they
//! share: page residency probes (the forked child with a time bound, for
//! faults and limits that must not hit the test process, is
//! `testkit::in_child`).

use super::limits::{count_maps, read_max_map_count};
use super::size::{page_size, round_up};
use super::*;
use std::time::Duration;
use testkit::{in_child, under_qemu};

mod cache;
mod guard;
mod pool;

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
