//! After `unwind::init`, a walk allocates nothing: not with a cold cache,
//! not with the caller's cache, not when reads are refused. A counting
//! global allocator checks it, counting only on the walking thread while
//! armed.

use signals::unwind::{self, Regs, UnwindCache};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

struct Counting;

thread_local! {
    // `const`: no lazy initialisation, no destructor, so touching these
    // from inside the allocator cannot itself allocate. Per thread, so the
    // tests of this binary, which run in parallel, count only their own.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if ARMED.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

/// Allocations counted on this thread while armed.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator.
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

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `[lo, hi)` of the calling thread's stack.
fn thread_stack() -> (usize, usize) {
    // SAFETY: attr is initialised by pthread_getattr_np before use and
    // destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        (addr as usize, addr as usize + size)
    }
}

/// Registers of the caller's frame, one level up (this function's own
/// frame is what the walk starts from; it is not inlined so that it is a
/// real frame with CFI of its own).
#[inline(never)]
fn walk_from_here(
    stack: (usize, usize),
    cache: Option<&mut UnwindCache>,
    out: &mut [usize],
) -> usize {
    let (pc, sp, fp, lr): (usize, usize, usize, usize);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only reads registers into outputs.
    unsafe {
        core::arch::asm!("lea {pc}, [rip]", "mov {sp}, rsp", "mov {fp}, rbp",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, options(nomem, nostack, preserves_flags));
        lr = 0;
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: only reads registers into outputs.
    unsafe {
        core::arch::asm!("adr {pc}, .", "mov {sp}, sp", "mov {fp}, x29", "mov {lr}, x30",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, lr = out(reg) lr,
            options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "x86")]
    // SAFETY: `call` pushes the next address and `pop` takes it back off.
    unsafe {
        core::arch::asm!("call 2f", "2: pop {pc}", "mov {sp}, esp", "mov {fp}, ebp",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, options(preserves_flags));
        lr = 0;
    }
    let n = unwind::walk(Regs { pc, sp, fp, lr }, &[stack], cache, out);
    black_box(n)
}

#[inline(never)]
fn nested(
    depth: usize,
    stack: (usize, usize),
    cache: Option<&mut UnwindCache>,
    out: &mut [usize],
) -> usize {
    let n = if depth == 0 {
        walk_from_here(stack, cache, out)
    } else {
        nested(depth - 1, stack, cache, black_box(out))
    };
    black_box(n)
}

#[test]
fn walks_after_init_allocate_nothing() {
    unwind::init();
    let stack = thread_stack();
    let mut cache = UnwindCache::new();
    let mut out = [0usize; 256];
    let mut frames = [0usize; 5];

    ARMED.with(|a| a.set(true));
    // Cold pooled cache, then warm; cold caller cache, then warm.
    frames[0] = nested(3, stack, None, &mut out);
    frames[1] = nested(5, stack, None, &mut out);
    frames[2] = nested(3, stack, Some(&mut cache), &mut out);
    frames[3] = nested(3, stack, Some(&mut cache), &mut out);
    // Refused reads and garbage registers.
    frames[4] = unwind::walk(
        Regs {
            pc: 0x1234,
            sp: 0x10,
            fp: 0x20,
            lr: 0,
        },
        &[],
        None,
        &mut out,
    );
    ARMED.with(|a| a.set(false));

    assert_eq!(allocations(), 0, "walks allocated; frames {frames:?}");
    assert_eq!(frames[4], 1);
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        // The walks went somewhere: through `nested` and beyond.
        assert!(frames[0] > 5 && frames[1] == frames[0] + 2, "{frames:?}");
        assert_eq!(frames[2], frames[0]);
        assert_eq!(frames[3], frames[0]);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    ARMED.with(|a| a.set(true));
    black_box(vec![1u8; 64]);
    ARMED.with(|a| a.set(false));
    assert!(allocations() >= 1);
}
