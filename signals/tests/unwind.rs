//! The stack walker on live stacks: the test thread's own, a parked
//! context's, and stacks it must not read.
//!
//! The test functions are compiled the default way (no forced frame
//! pointers), so on x86_64 and aarch64 it is the CFI that finds their
//! callers. On i686 the walker follows frame pointers only (see
//! `signals::unwind`), so there only the bounds are checked.

use signals::unwind::{self, Regs, UnwindCache};
use std::hint::black_box;
use testkit::thread_stack;

/// How far past a function's first byte a return address into it may lie.
/// The test functions are a few calls and a `black_box` each.
const FN_WINDOW: usize = 768;

/// Registers at the point of use (`arch::current_regs!`): the pc of the
/// capturing instruction itself, and sp/fp/lr as they are there.
macro_rules! here {
    () => {
        arch::current_regs!()
    };
}

fn within(pc: usize, f: usize) -> bool {
    pc >= f && pc < f + FN_WINDOW
}

/// Asserts that `pcs` begins with a pc in each of `fns`, in order.
fn assert_chain(pcs: &[usize], fns: &[(&str, usize)]) {
    assert!(
        pcs.len() >= fns.len(),
        "only {} frames: {pcs:x?}",
        pcs.len()
    );
    for (i, &(name, f)) in fns.iter().enumerate() {
        assert!(
            within(pcs[i], f),
            "frame {i} ({:#x}) is not in {name} ({f:#x}); frames {pcs:x?}",
            pcs[i]
        );
    }
}

/// Whether the walker reads CFI here (frame pointers only where not).
const CFI: bool = arch::unwind::CFI;

#[inline(never)]
fn level1(out: &mut [usize], cache: Option<&mut UnwindCache>) -> usize {
    let n = level2(black_box(out), cache);
    black_box(n)
}

#[inline(never)]
fn level2(out: &mut [usize], cache: Option<&mut UnwindCache>) -> usize {
    let n = level3(black_box(out), cache);
    black_box(n)
}

#[inline(never)]
fn level3(out: &mut [usize], cache: Option<&mut UnwindCache>) -> usize {
    let regs = here!();
    let n = unwind::walk(regs, &[thread_stack()], cache, out);
    black_box(n)
}

fn levels() -> [(&'static str, usize); 3] {
    [
        ("level3", level3 as *const () as usize),
        ("level2", level2 as *const () as usize),
        ("level1", level1 as *const () as usize),
    ]
}

#[test]
fn the_walk_from_here_finds_three_nested_callers_in_order() {
    unwind::init();
    let mut out = [0usize; 128];
    let n = level1(&mut out, None);
    let pcs = &out[..n];
    assert!(within(pcs[0], levels()[0].1), "{pcs:x?}");
    if CFI {
        assert_chain(pcs, &levels());
        // The walk goes on through the harness to the thread's start, whose
        // CFI ends the stack, rather than running out of room.
        assert!(n > 4 && n < out.len(), "{n} frames: {pcs:x?}");
    }
}

#[test]
fn a_caller_owned_cache_gives_the_same_frames_as_a_pooled_one() {
    unwind::init();
    let mut cache = UnwindCache::new();
    let (mut a, mut b) = ([0usize; 64], [0usize; 64]);
    // Twice with the same cache: the second walk runs from cached rules.
    let na = level1(&mut a, Some(&mut cache));
    let nb = level1(&mut b, Some(&mut cache));
    if !CFI {
        // Frame pointers only, and these functions keep none.
        assert!(within(a[0], levels()[0].1) && within(b[0], levels()[0].1));
        return;
    }
    assert_chain(&a[..na], &levels());
    assert_chain(&b[..nb], &levels());
    // The same return addresses in level2 and level1, and beyond this
    // test function (out[3]: its two different call sites).
    let same = |x: &[usize], y: &[usize]| x[1..3] == y[1..3] && x[4..] == y[4..];
    assert!(same(&a[..na], &b[..nb]), "{:x?}\n{:x?}", &a[..na], &b[..nb]);
    let mut c = [0usize; 64];
    let nc = level1(&mut c, None);
    assert!(same(&a[..na], &c[..nc]), "{:x?}\n{:x?}", &a[..na], &c[..nc]);
}

#[test]
fn a_stack_outside_the_readable_ranges_yields_only_the_first_frame() {
    unwind::init();
    let regs = here!();
    let mut out = [0usize; 16];
    assert_eq!(unwind::walk(regs, &[], None, &mut out), 1);
    assert_eq!(out[0], regs.pc);
    // A readable range elsewhere (a heap buffer) does not help either.
    let elsewhere = vec![0usize; 512];
    let lo = elsewhere.as_ptr() as usize;
    let n = unwind::walk(regs, &[(lo, lo + 512 * size_of::<usize>())], None, &mut out);
    assert_eq!(n, 1);
    // Nor does a range that stops just short of the sp.
    let n = unwind::walk(regs, &[(regs.sp - 4096, regs.sp)], None, &mut out);
    assert_eq!(n, 1);
}

#[test]
fn garbage_registers_end_the_walk_without_a_fault() {
    unwind::init();
    let stack = thread_stack();
    let mut out = [0usize; 16];
    for regs in [
        Regs::default(),
        Regs {
            pc: 0x1234,
            sp: 0xdead_0000,
            fp: 0xbeef,
            lr: 0x42,
        },
        Regs {
            pc: usize::MAX,
            sp: usize::MAX - 3,
            fp: usize::MAX,
            lr: usize::MAX,
        },
        // A real pc with an sp and fp that are not on any readable stack.
        Regs {
            pc: level3 as *const () as usize,
            sp: 8,
            fp: 16,
            lr: 0,
        },
        // The real stack with a wild fp and a misaligned sp.
        Regs {
            pc: level3 as *const () as usize,
            sp: stack.1 - 4099,
            fp: 1,
            lr: 0,
        },
    ] {
        let n = unwind::walk(regs, &[stack], None, &mut out);
        assert!(n >= 1 && out[0] == regs.pc, "{regs:x?}");
        assert!(n <= 2, "{regs:x?} gave {:x?}", &out[..n]);
    }
    assert_eq!(unwind::walk(Regs::default(), &[stack], None, &mut []), 0);
}

#[test]
fn a_full_buffer_stops_the_walk() {
    unwind::init();
    let mut out = [0usize; 2];
    let n = level1(&mut out, None);
    if CFI {
        assert_eq!(n, 2);
        assert!(within(out[1], levels()[1].1), "{out:x?}");
    } else {
        assert!(n <= 2);
    }
}

/// A context parked in `g_inner` → `g_outer` → `g_entry` (all CFI-only),
/// on a stack of its own, as a parked G is.
mod parked {
    use super::*;
    use arch::context;

    pub struct Ctx {
        pub main_sp: usize,
        pub g_sp: usize,
    }

    pub unsafe extern "C" fn g_entry(data: usize, _arg: usize) -> ! {
        let ctx = data as *mut Ctx;
        g_outer(ctx);
        loop {
            // SAFETY: as in g_inner.
            unsafe { context::switch(&mut (*ctx).g_sp, (*ctx).main_sp, 0) };
        }
    }

    #[inline(never)]
    pub fn g_outer(ctx: *mut Ctx) {
        g_inner(black_box(ctx));
        black_box(ctx);
    }

    #[inline(never)]
    pub fn g_inner(ctx: *mut Ctx) {
        // SAFETY: ctx is the leaked Ctx of the test, whose thread is
        // suspended in its own switch with main_sp saved.
        unsafe { context::switch(&mut (*ctx).g_sp, (*ctx).main_sp, 0) };
        black_box(ctx);
    }
}

#[test]
fn a_parked_context_walks_to_its_entry_and_stops_at_the_trampoline() {
    use arch::context;
    unwind::init();
    // Leaked: the context stays parked forever.
    let stack: &'static mut [u128] = Box::leak(vec![0u128; 4096].into_boxed_slice());
    let (lo, hi) = (
        stack.as_ptr() as usize,
        stack.as_ptr() as usize + stack.len() * 16,
    );
    let ctx = Box::leak(Box::new(parked::Ctx {
        main_sp: 0,
        g_sp: 0,
    }));
    let ctx_ptr = ctx as *mut parked::Ctx;
    // SAFETY: [lo, hi) is a live, leaked allocation far larger than
    // INIT_FRAME_BYTES; ctx outlives the context.
    unsafe {
        (*ctx_ptr).g_sp = context::init_stack(hi, parked::g_entry, ctx_ptr as usize);
        context::switch(&mut (*ctx_ptr).main_sp, (*ctx_ptr).g_sp, 0);
    }
    // SAFETY: g_sp was stored by the context's switch in g_inner and the
    // context has not been resumed since.
    let saved = unsafe { context::saved_regs((*ctx_ptr).g_sp) };
    assert!(saved.sp > lo && saved.sp < hi);
    let regs = Regs {
        pc: saved.pc,
        sp: saved.sp,
        fp: saved.fp,
        lr: saved.lr,
    };
    let mut out = [0usize; 32];
    let n = unwind::walk(regs, &[(lo, hi)], None, &mut out);
    let pcs = &out[..n];
    assert_eq!(pcs[0], saved.pc);
    if CFI {
        assert_chain(
            pcs,
            &[
                ("g_inner", parked::g_inner as *const () as usize),
                ("g_outer", parked::g_outer as *const () as usize),
                ("g_entry", parked::g_entry as *const () as usize),
            ],
        );
        // Then, on x86_64, the trampoline's return address, where the CFI
        // ends the stack; on aarch64 `g_entry`, which never returns, need
        // not keep `lr` (so the trampoline may not show). Either way nothing
        // from the test thread's stack follows.
        let expect = if cfg!(target_arch = "x86_64") {
            4..=4
        } else {
            3..=4
        };
        assert!(expect.contains(&n), "{pcs:x?}");
    }
}
