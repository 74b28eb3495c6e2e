//! Unit tests of the stack rooms, one file per room, with the helpers they
//! share: a forked child with a time bound (for faults and limits that must
//! not hit the test process), and page residency probes.

use super::limits::{count_maps, read_max_map_count};
use super::size::{page_size, round_up};
use super::*;
use std::time::{Duration, Instant};
use testkit::under_qemu;

mod cache;
mod guard;
mod pool;

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
