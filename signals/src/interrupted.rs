//! The stack a signal interrupted: walking it from the signal context
//! (the running G's stack and the M's OS stack below it), printing it as a
//! G's section or as the M's own stack, and printing the registers. Shared
//! by the crasher's dump ([`crate::crash`]), a relayed M's section
//! ([`crate::relay`]) and live dumps ([`crate::live`]); a helper below
//! them that calls only [`crate::dump`] and the stack helpers.
//!
//! Async-signal-safe: see [`crate::dump`].

use crate::altstack;
use crate::dump::{self, Frames, Style};
use crate::per_m;
use crate::unwind::Regs;
use crate::write::Out;
use arch::sigctx::SigCtx;
use scheduler::g::GRef;
use scheduler::m::M;

/// The registers a walk of the interrupted code starts from.
pub(crate) fn regs(ctx: &SigCtx) -> Regs {
    Regs {
        pc: ctx.pc(),
        sp: ctx.sp(),
        fp: ctx.fp(),
        lr: ctx.lr(),
    }
}

/// Walks the interrupted code: the G running on `m`, or without a G the
/// M's (or the thread's) own stack.
pub(crate) fn capture(f: &mut Frames, ctx: &SigCtx, g: Option<GRef>, m: Option<&'static M>) {
    match g {
        Some(g) => capture_running(f, regs(ctx), g, m, ctx.sp()),
        None => f.capture(regs(ctx), &[os_stack(m, ctx.sp())]),
    }
}

/// Walks the G running on `m` from the signal context: its own stack and,
/// for frames below a C call or the signal, the M's OS stack (the one `sp`
/// is on first).
pub(crate) fn capture_running(
    f: &mut Frames,
    regs: Regs,
    g: GRef,
    m: Option<&'static M>,
    sp: usize,
) {
    let (lo, hi) = g.stack_bounds();
    let mut ranges = [(lo, hi), os_stack(m, sp)];
    if !(lo..hi).contains(&sp) {
        ranges.swap(0, 1);
    }
    f.capture(regs, &ranges);
}

/// `[lo, hi)` of the OS stack the handler may read for thread stacks: the M's
/// recorded thread stack, or the main thread's. For a thread the runtime does
/// not know, the pages above `sp` that a probe finds readable (none when
/// `sp` is in a guard page after an overflow: then only the pc prints).
fn os_stack(m: Option<&'static M>, sp: usize) -> (usize, usize) {
    if let Some((lo, hi)) = m.and_then(per_m::thread_stack) {
        return (lo, hi);
    }
    altstack::main_stack_if(sp).unwrap_or_else(|| altstack::readable_above(sp, 8 << 20))
}

/// The stack a signal interrupted: its G's section (`state` for the
/// header), or the M's own stack as `goroutine 0 [no_g]:` with every frame.
pub(crate) fn section(
    o: &mut Out,
    f: &Frames,
    g: Option<GRef>,
    state: Option<&str>,
    coarse: u64,
    no_g: &str,
    style: Style,
) {
    match g {
        Some(g) => {
            dump::header(o, g.0, state, coarse);
            dump::stack(o, f, style);
            dump::created_by(o, g.0, style);
        }
        None => {
            o.str("goroutine 0 [").str(no_g).str("]:").nl();
            dump::stack(
                o,
                f,
                Style {
                    system: true,
                    ..style
                },
            );
        }
    }
}

/// Prints the registers in Go's layout (`rax    0x…`).
pub(crate) fn print_regs(o: &mut Out, ctx: &SigCtx) {
    ctx.dump_regs(&mut |name, v| {
        o.str(name);
        for _ in name.len()..7 {
            o.str(" ");
        }
        o.hex(v).nl();
    });
}
