//! After `symbols::init`, `lookup` (what the signal handler calls for every
//! frame) allocates nothing: hits, misses, addresses in shared objects. A
//! counting global allocator (`testkit::Counting`) checks it, counting only
//! the looking-up thread's calls.

use signals::symbols;
use std::hint::black_box;
use testkit::allocations_in;

#[global_allocator]
static GLOBAL: testkit::Counting = testkit::Counting;

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

    let ((ready, n), allocations) = allocations_in(|| {
        found[0] = symbols::lookup(black_box(here));
        found[1] = symbols::lookup(black_box(here + 1));
        found[2] = symbols::lookup(black_box(in_libc));
        found[3] = symbols::lookup(black_box(0));
        found[4] = symbols::lookup(black_box(usize::MAX));
        found[5] = symbols::lookup(black_box(&found as *const _ as usize));
        (symbols::is_ready(), symbols::symbol_count())
    });

    assert_eq!(allocations, 0, "lookups allocated: {found:?}");
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
    let (_, allocations) = allocations_in(|| black_box(vec![1u8; 64]));
    assert!(allocations >= 1);
}
