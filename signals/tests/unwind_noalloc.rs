//! After `unwind::init`, a walk allocates nothing: not with a cold cache,
//! not with the caller's cache, not when reads are refused. A counting
//! global allocator (`testkit::Counting`) checks it, counting only the
//! walking thread's calls.

use signals::unwind::{self, Regs, UnwindCache};
use std::hint::black_box;
use testkit::{allocations_in, thread_stack};

#[global_allocator]
static GLOBAL: testkit::Counting = testkit::Counting;

/// Registers of the caller's frame, one level up (this function's own
/// frame is what the walk starts from; it is not inlined so that it is a
/// real frame with CFI of its own).
#[inline(never)]
fn walk_from_here(
    stack: (usize, usize),
    cache: Option<&mut UnwindCache>,
    out: &mut [usize],
) -> usize {
    let regs = arch::current_regs!();
    let n = unwind::walk(regs, &[stack], cache, out);
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

    let ((), allocations) = allocations_in(|| {
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
    });

    assert_eq!(allocations, 0, "walks allocated; frames {frames:?}");
    assert_eq!(frames[4], 1);
    if arch::unwind::CFI {
        // The walks went somewhere: through `nested` and beyond.
        assert!(frames[0] > 5 && frames[1] == frames[0] + 2, "{frames:?}");
        assert_eq!(frames[2], frames[0]);
        assert_eq!(frames[3], frames[0]);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let (_, allocations) = allocations_in(|| black_box(vec![1u8; 64]));
    assert!(allocations >= 1);
}
