//! After `symbols::init`, `lookup` (what the signal handler calls for every
//! frame) allocates nothing: hits, misses, addresses in shared objects. A
//! counting global allocator checks it, counting only on the looking-up
//! thread while armed.

use signals::symbols;
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

#[inline(never)]
fn a_function_to_find() -> usize {
    black_box(7)
}

#[test]
fn lookups_after_init_allocate_nothing() {
    symbols::init();
    let here = a_function_to_find as *const () as usize;
    let in_libc = libc::getpid as *const () as usize;
    let mut found = [None; 6];

    ARMED.with(|a| a.set(true));
    found[0] = symbols::lookup(black_box(here));
    found[1] = symbols::lookup(black_box(here + 1));
    found[2] = symbols::lookup(black_box(in_libc));
    found[3] = symbols::lookup(black_box(0));
    found[4] = symbols::lookup(black_box(usize::MAX));
    found[5] = symbols::lookup(black_box(&found as *const _ as usize));
    let ready = symbols::is_ready();
    let n = symbols::symbol_count();
    ARMED.with(|a| a.set(false));

    assert_eq!(allocations(), 0, "lookups allocated: {found:?}");
    assert!(ready && n > 0);
    let s = found[1].expect("our own function");
    assert!(s.name.ends_with("a_function_to_find"), "{}", s.name);
    assert_eq!(s.offset, 1);
    assert!(found[2].is_some());
    assert_eq!(found[3], None);
    assert_eq!(found[4], None);
    assert_eq!(found[5], None, "a stack address is not code");
    assert_eq!(a_function_to_find(), 7);
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    ARMED.with(|a| a.set(true));
    black_box(vec![1u8; 64]);
    ARMED.with(|a| a.set(false));
    assert!(allocations() >= 1);
}
