//! Conformance suite for `arch::context`: every architecture must pass it,
//! natively and under qemu-user (`ci/cross.sh`).

use arch::context::{self, SavedRegs};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::hint::black_box;

/// A heap-allocated stack for a test context.
struct TestStack {
    mem: Vec<u128>,
}

impl TestStack {
    fn new(bytes: usize) -> Self {
        TestStack {
            mem: vec![0u128; bytes / 16],
        }
    }
    fn top(&mut self) -> usize {
        self.mem.as_mut_ptr() as usize + self.mem.len() * 16
    }
    fn contains(&self, addr: usize) -> bool {
        let base = self.mem.as_ptr() as usize;
        addr >= base && addr < base + self.mem.len() * 16
    }
}

/// What a context runs.
type Body = Box<dyn FnMut(&mut Pair)>;

/// State shared between the test thread and the context it runs.
struct Pair {
    main_sp: usize,
    ctx_sp: usize,
    /// What the context body does.
    body: Option<Body>,
}

impl Pair {
    /// From inside the context: switch back to the test thread.
    fn switch_to_main(&mut self, arg: usize) -> usize {
        // SAFETY: main_sp was stored by the switch that entered us.
        unsafe { context::switch(&mut self.ctx_sp, self.main_sp, arg) }
    }
    /// From the test thread: resume the context.
    fn switch_to_ctx(&mut self, arg: usize) -> usize {
        // SAFETY: ctx_sp came from init_stack or the context's last switch.
        unsafe { context::switch(&mut self.main_sp, self.ctx_sp, arg) }
    }
}

unsafe extern "C" fn entry(data: usize, arg: usize) -> ! {
    // SAFETY: data is the &mut Pair given to init_stack; the test thread is
    // suspended inside switch while we use it.
    let pair = unsafe { &mut *(data as *mut Pair) };
    assert_eq!(arg, 0xfeed);
    let mut body = pair.body.take().unwrap();
    body(pair);
    drop(body);
    pair.switch_to_main(usize::MAX);
    unreachable!("finished context resumed");
}

fn start(stack: &mut TestStack, body: impl FnMut(&mut Pair) + 'static) -> Box<Pair> {
    let mut pair = Box::new(Pair {
        main_sp: 0,
        ctx_sp: 0,
        body: Some(Box::new(body)),
    });
    let data = &mut *pair as *mut Pair as usize;
    // SAFETY: the stack is a live allocation larger than INIT_FRAME_BYTES.
    pair.ctx_sp = unsafe { context::init_stack(stack.top(), entry, data) };
    pair
}

#[test]
fn ping_pong_many_switches() {
    let mut stack = TestStack::new(64 * 1024);
    let mut pair = start(&mut stack, |p| {
        let mut expect = 1;
        loop {
            let got = p.switch_to_main(expect);
            if got == 0 {
                return;
            }
            assert_eq!(got, expect + 1);
            expect = got + 1;
        }
    });
    let mut v = pair.switch_to_ctx(0xfeed);
    for _ in 0..500_000 {
        assert_eq!(v % 2, 1);
        v = pair.switch_to_ctx(v + 1);
    }
    assert_eq!(pair.switch_to_ctx(0), usize::MAX);
}

/// Uses about 200 bytes of stack per level and returns `n`.
fn recurse(n: u64) -> u64 {
    let pad = black_box([n; 16]);
    if n == 0 {
        pad[3]
    } else {
        recurse(n - 1) + black_box(pad[7]) / n
    }
}

#[test]
fn deep_recursion_inside_context() {
    let mut stack = TestStack::new(8 << 20);
    let result = std::rc::Rc::new(Cell::new(0));
    let r = result.clone();
    let mut pair = start(&mut stack, move |_| r.set(recurse(20_000)));
    assert_eq!(pair.switch_to_ctx(0xfeed), usize::MAX);
    assert_eq!(result.get(), 20_000);
}

#[test]
fn panic_is_caught_at_the_context_boundary() {
    let mut stack = TestStack::new(256 * 1024);
    let caught = std::rc::Rc::new(Cell::new(false));
    let c = caught.clone();
    let mut pair = start(&mut stack, move |p| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.switch_to_main(1);
            panic!("inside a context");
        }));
        c.set(r.is_err());
    });
    assert_eq!(pair.switch_to_ctx(0xfeed), 1);
    assert_eq!(pair.switch_to_ctx(2), usize::MAX);
    assert!(caught.get());
}

#[inline(never)]
fn marker_function_inside_context() -> String {
    black_box(Backtrace::force_capture().to_string())
}

#[test]
fn backtrace_stops_at_the_entry() {
    let mut stack = TestStack::new(256 * 1024);
    let out = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let o = out.clone();
    let mut pair = start(&mut stack, move |_| {
        *o.borrow_mut() = marker_function_inside_context()
    });
    assert_eq!(pair.switch_to_ctx(0xfeed), usize::MAX);
    let bt = out.borrow();
    assert!(bt.contains("marker_function_inside_context"), "{bt}");
    assert!(bt.contains("conformance::entry"), "{bt}");
    // Nothing of the test thread's own stack may appear after the entry:
    // the last frame is the trampoline that ends the chain.
    let frames: Vec<&str> = bt
        .lines()
        .filter(|l| !l.trim_start().starts_with("at "))
        .collect();
    assert!(
        frames.last().unwrap().contains("trampoline"),
        "unwinder left the context:\n{bt}"
    );
    assert!(!bt.contains("run_test"), "unwinder left the context:\n{bt}");
}

#[test]
fn saved_registers_point_into_the_parked_stack() {
    let mut stack = TestStack::new(64 * 1024);
    let mut pair = start(&mut stack, |p| {
        p.switch_to_main(1);
    });
    // SAFETY: ctx_sp is a fresh context from init_stack.
    let fresh: SavedRegs = unsafe { context::saved_regs(pair.ctx_sp) };
    assert!(stack.contains(fresh.sp - 1));
    assert_eq!(
        fresh.fp, 0,
        "a new context starts with the frame chain ended"
    );
    assert_ne!(fresh.pc, 0);
    assert_eq!(pair.switch_to_ctx(0xfeed), 1);
    // SAFETY: the context is parked in its switch back to us.
    let parked = unsafe { context::saved_regs(pair.ctx_sp) };
    assert!(stack.contains(parked.sp));
    assert!(parked.sp > pair.ctx_sp);
    assert_ne!(parked.pc, fresh.pc);
    assert_eq!(pair.switch_to_ctx(0), usize::MAX);
}

#[test]
fn two_contexts_interleave() {
    // Context A and B each bounce through the test thread many times with
    // independent state kept in callee-saved registers by the compiler.
    let mut sa = TestStack::new(64 * 1024);
    let mut sb = TestStack::new(64 * 1024);
    let mk = |seed: u64| {
        move |p: &mut Pair| {
            let mut x = seed;
            for i in 0..10_000u64 {
                x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                let f = black_box(x as f64 * 0.5);
                p.switch_to_main((x >> 1) as usize);
                assert_eq!(f, x as f64 * 0.5);
            }
        }
    };
    let mut a = start(&mut sa, mk(1));
    let mut b = start(&mut sb, mk(2));
    let (mut va, mut vb) = (a.switch_to_ctx(0xfeed), b.switch_to_ctx(0xfeed));
    for _ in 1..10_000 {
        va = a.switch_to_ctx(va);
        vb = b.switch_to_ctx(vb);
    }
    assert_eq!(a.switch_to_ctx(0), usize::MAX);
    assert_eq!(b.switch_to_ctx(0), usize::MAX);
}

mod regs;
