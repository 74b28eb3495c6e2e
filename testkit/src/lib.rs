//! Test support shared by the tests of every gort crate, so that each helper
//! exists once:
//!
//! - [`Counting`], a global allocator that counts this thread's allocator
//!   calls, and [`allocations`] / [`allocations_in`] to read the count: how
//!   the tests prove that a signal handler, an unwinder walk or a symbol
//!   lookup allocates nothing.
//! - [`thread_stack`]: the calling thread's stack, the bounds an unwinder
//!   walk is checked against.
//! - [`under_qemu`]: whether the tests run under qemu-user (`ci/cross.sh`
//!   sets `GORT_UNDER_QEMU`), for the checks qemu cannot support.
//! - [`in_child`] / [`in_child_stderr`]: run a closure in a forked child
//!   with a hard time bound, for faults, limits and fatal errors that must
//!   not hit the test process.
//!
//! A dev-dependency of `arch`, `scheduler` and `signals` and a dependency of
//! the `tests` package (its scenarios program installs the allocator);
//! never published. It depends on nothing of gort, so any crate can use it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// A global allocator that forwards every call to the system allocator and
/// counts, per thread, the calls (`alloc`, `alloc_zeroed`, `realloc`,
/// `dealloc`: freeing is as forbidden in a signal handler as allocating).
///
/// Install it in the test binary or program that needs it:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: testkit::Counting = testkit::Counting;
///
/// fn main() {
///     let (v, n) = testkit::allocations_in(|| vec![1u8; 16]);
///     assert!(n >= 1 && v.len() == 16);
/// }
/// ```
///
/// Counting is per thread so that tests running in parallel, or the other
/// threads of a runtime (an M starting another M, sysmon), do not disturb
/// the count of the thread under test.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    /// This thread's allocator calls. `const`-initialised and without a
    /// destructor, so touching it from inside the allocator cannot itself
    /// allocate, and reading it from a signal handler is a plain load.
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

#[inline]
fn count() {
    // `try_with`: a thread being torn down may still allocate.
    let _ = CALLS.try_with(|n| n.set(n.get() + 1));
}

/// Allocator calls made by the calling thread so far (0 if [`Counting`] is
/// not the global allocator). Async-signal-safe: a load from a
/// const-initialised thread-local.
pub fn allocations() -> usize {
    CALLS.try_with(Cell::get).unwrap_or(0)
}

/// Runs `f` and returns its result with the allocator calls the calling
/// thread made meanwhile.
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = allocations();
    let r = f();
    (r, allocations().wrapping_sub(before))
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// count touches only a const-initialised thread-local and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// `[lo, hi)` of the calling thread's stack, as glibc reports it (for the
/// main thread, the stack's current extent up to its rlimit). A forked
/// child runs on a copy of it at the same addresses.
pub fn thread_stack() -> (usize, usize) {
    // SAFETY: attr is initialised by pthread_getattr_np before use and
    // destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        assert_eq!(
            libc::pthread_getattr_np(libc::pthread_self(), &mut attr),
            0,
            "thread_stack: pthread_getattr_np failed"
        );
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        assert_eq!(
            libc::pthread_attr_getstack(&attr, &mut addr, &mut size),
            0,
            "thread_stack: pthread_attr_getstack failed"
        );
        libc::pthread_attr_destroy(&mut attr);
        (addr as usize, addr as usize + size)
    }
}

/// Whether the tests run under qemu-user (`ci/cross.sh` sets
/// `GORT_UNDER_QEMU`). A test that cannot work there checks it, says why it
/// is skipped, and returns.
pub fn under_qemu() -> bool {
    std::env::var_os("GORT_UNDER_QEMU").is_some()
}

/// Runs `f` in a forked child with a hard time bound (120 s, then
/// `SIGKILL`). Returns the child's wait status and what `f` returned (empty
/// if the child died before returning; "child panicked" if `f` panicked).
/// For faults and limits that must not hit the test process.
pub fn in_child(f: impl FnOnce() -> String) -> (libc::c_int, String) {
    fork_with_pipe(|fd| {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| "child panicked".to_owned());
        // SAFETY: writing our own buffer to our pipe.
        unsafe { libc::write(fd, out.as_ptr().cast(), out.len()) };
    })
}

/// Runs `f` in a forked child whose stderr is a pipe, with the bound of
/// [`in_child`]. Returns the child's wait status and what it wrote to
/// stderr (a fatal error's message before it aborts). The child exits 0 if
/// `f` returns.
pub fn in_child_stderr(f: impl FnOnce()) -> (libc::c_int, String) {
    fork_with_pipe(|fd| {
        // SAFETY: makes our pipe the child's stderr; both are open.
        unsafe { libc::dup2(fd, 2) };
        f();
    })
}

/// Forks; the child runs `body` with the write end of a pipe and exits 0.
/// The parent waits (bounded) and returns the status and the pipe's text.
fn fork_with_pipe(body: impl FnOnce(libc::c_int)) -> (libc::c_int, String) {
    use std::time::{Duration, Instant};
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only runs `body` (syscalls and allocation, which
    // glibc makes fork-safe), then calls _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        body(fds[1]);
        // SAFETY: _exit skips the parent's atexit handlers and the test
        // harness's state.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing the write end we do not use.
    unsafe { libc::close(fds[1]) };
    // The child writes far less than a pipe holds, so it never waits for
    // us to read.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Symptom: a counter that never counts makes every no-allocation test
    /// pass.
    #[test]
    fn the_counter_sees_allocations_and_frees() {
        let (v, n) = allocations_in(|| std::hint::black_box(vec![1u8; 64]));
        assert!(n >= 1, "an allocation was not counted");
        let (_, freed) = allocations_in(|| drop(v));
        assert_eq!(freed, 1, "a free was not counted");
        let (_, none) = allocations_in(|| std::hint::black_box(3 + 4));
        assert_eq!(none, 0);
    }

    #[test]
    fn other_threads_do_not_count_here() {
        use std::sync::atomic::{AtomicU8, Ordering};
        // 0: start, 1: go, 2: the other thread allocated.
        let step = AtomicU8::new(0);
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                while step.load(Ordering::Acquire) != 1 {
                    std::hint::spin_loop();
                }
                let (_, n) = allocations_in(|| std::hint::black_box(vec![0u8; 1 << 10]));
                step.store(2, Ordering::Release);
                n
            });
            // Only atomics between the two reads of this thread's count.
            let before = allocations();
            step.store(1, Ordering::Release);
            while step.load(Ordering::Acquire) != 2 {
                std::hint::spin_loop();
            }
            assert_eq!(allocations(), before, "counted another thread's allocation");
            assert!(other.join().unwrap() >= 1);
        });
    }

    #[test]
    fn the_stack_holds_a_local() {
        let (lo, hi) = thread_stack();
        let local = 0u8;
        let at = &local as *const u8 as usize;
        assert!(lo < at && at < hi, "{lo:#x}..{hi:#x} does not hold {at:#x}");
    }
}
