//! The crash dump: G headers, frames, registers, modules.
//!
//! # Async-signal-safety
//!
//! Everything here runs inside a signal handler. It may: read atomics, walk
//! the append-only G and M registries, read stacks through the bounds-checked
//! unwinder, look symbols up in the table built at start-up, and write with
//! `write(2)` through [`Out`]. It may not: allocate, format with `format!`,
//! take a lock that ordinary code may hold, touch a lazily initialised
//! thread-local, or call `dladdr`/`dl_iterate_phdr`/backtrace-rs.
//!
//! The format is specified in `docs/crash-format.md`.

use crate::level::Level;
use crate::modules;
use crate::symbols;
use crate::unwind::{self, Regs};
use crate::write::Out;
use scheduler::g::{ALLGS, G, GStatus};

/// Most frames captured per stack.
pub const MAX_FRAMES: usize = 256;
/// Frames printed at each end of a longer stack.
const EDGE_FRAMES: usize = 50;
/// Most stack groups printed in `all` mode before eliding.
const MAX_GROUPS: usize = 256;
/// Member ids listed per group.
const GROUP_IDS: usize = 8;

/// A captured stack: pcs, innermost first.
#[derive(Debug)]
pub struct Frames {
    pcs: [usize; MAX_FRAMES],
    n: usize,
}

impl Frames {
    /// An empty capture (lives on the handler's stack).
    pub const fn new() -> Frames {
        Frames {
            pcs: [0; MAX_FRAMES],
            n: 0,
        }
    }

    /// Walks from `regs` within `readable`.
    pub fn capture(&mut self, regs: Regs, readable: &[(usize, usize)]) {
        self.n = unwind::walk(regs, readable, None, &mut self.pcs);
    }

    /// The captured pcs.
    pub fn pcs(&self) -> &[usize] {
        &self.pcs[..self.n]
    }

    /// FNV-1a hash of the frames that would be printed (stack identity for
    /// grouping: Gs that parked through different runtime paths but show
    /// the same user frames form one group).
    fn hash(&self, system: bool) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (i, &pc) in self.pcs().iter().enumerate() {
            if !system && hidden(pc, i, false) {
                continue;
            }
            h ^= pc as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

impl Default for Frames {
    fn default() -> Self {
        Frames::new()
    }
}

/// Whether a frame belongs to the runtime (hidden below `system` level).
/// The join packet's `run` stays visible: it is the G's root frame, and in
/// optimised builds the G's closure is inlined into it.
fn is_runtime_frame(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "scheduler::",
        "arch::",
        "signals::",
        "std::panicking::",
        "std::panic::catch_unwind",
        "__rust_try",
        "<core::panic::unwind_safe::AssertUnwindSafe",
        "core::ops::function::FnOnce::call_once",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Prints one frame.
fn frame(o: &mut Out, pc: usize, lookup_pc: usize) {
    match symbols::lookup(lookup_pc) {
        Some(s) => {
            o.str(s.name)
                .str("+")
                .hex((pc - (lookup_pc - s.offset)) as u64);
        }
        None => {
            o.str("?");
        }
    }
    o.nl();
    o.str("\t");
    match modules::module_of(lookup_pc) {
        Some((m, off)) => {
            o.str(&m.path).str("+").hex((off + (pc - lookup_pc)) as u64);
        }
        None => {
            o.str("?");
        }
    }
    o.str(" pc=").hex(pc as u64).nl();
}

/// Length of the repetition starting at `i` with period `p` (in copies).
fn repeats(pcs: &[usize], i: usize, p: usize) -> usize {
    let mut k = 1;
    while i + (k + 1) * p <= pcs.len() && pcs[i..i + p] == pcs[i + k * p..i + (k + 1) * p] {
        k += 1;
    }
    k
}

/// Whether frame `i` (pc `pc`) is a runtime frame hidden below `system`.
/// The exact top frame of a running G is never hidden (it is where the
/// signal hit); a parked G's top frames are the runtime's park path.
fn hidden(pc: usize, i: usize, exact_top: bool) -> bool {
    if exact_top && i == 0 {
        return false;
    }
    let lookup = if i == 0 { pc } else { pc.wrapping_sub(1) };
    symbols::lookup(lookup).is_some_and(|s| is_runtime_frame(s.name))
}

/// Prints a stack: runtime frames hidden unless `system`, recursion
/// collapsed, the middle of very deep stacks elided. `exact_top`: the first
/// pc is where a signal interrupted (always shown), not a parked G's resume
/// address.
pub fn stack(o: &mut Out, f: &Frames, system: bool) {
    stack_from(o, f, system, true);
}

/// [`stack`] for a parked G: its top runtime frames are hidden too.
pub fn parked_stack(o: &mut Out, f: &Frames, system: bool) {
    stack_from(o, f, system, false);
}

fn stack_from(o: &mut Out, f: &Frames, system: bool, exact_top: bool) {
    let pcs = f.pcs();
    let mut printed = 0usize;
    let mut i = 0;
    let total = pcs.len();
    while i < total {
        // Collapse direct or short-cycle recursion.
        let mut collapsed = false;
        for p in 1..=4 {
            let k = repeats(pcs, i, p);
            if k >= 4 {
                for j in 0..p {
                    emit(o, pcs, i + j, system, exact_top, &mut printed);
                }
                o.str("...")
                    .dec(((k - 1) * p) as u64)
                    .str(" frames of recursion (")
                    .dec(p as u64)
                    .str("-frame cycle) elided...")
                    .nl();
                i += k * p;
                collapsed = true;
                break;
            }
        }
        if collapsed {
            continue;
        }
        if printed == EDGE_FRAMES && total - i > EDGE_FRAMES {
            let skip = total - i - EDGE_FRAMES;
            o.str("...").dec(skip as u64).str(" frames elided...").nl();
            i += skip;
            printed += 1;
            continue;
        }
        emit(o, pcs, i, system, exact_top, &mut printed);
        i += 1;
    }
    if total == MAX_FRAMES {
        o.str("...stack deeper than ")
            .dec(MAX_FRAMES as u64)
            .str(" frames: the outermost were not captured")
            .nl();
    }
}

fn emit(o: &mut Out, pcs: &[usize], i: usize, system: bool, exact_top: bool, printed: &mut usize) {
    let pc = pcs[i];
    // A return address points after the call: look up the call itself.
    let lookup = if i == 0 { pc } else { pc.wrapping_sub(1) };
    if !system && hidden(pc, i, exact_top) {
        return;
    }
    frame(o, pc, lookup);
    *printed += 1;
}

/// Prints `goroutine N [status, ...]:`.
pub fn header(o: &mut Out, g: &'static G, status_override: Option<&str>, now_coarse: u64) {
    o.str("goroutine ").dec(g.goid()).str(" [");
    match status_override {
        Some(s) => o.str(s),
        None => {
            let st = g.status();
            if st == GStatus::Waiting && !g.wait_reason().as_str().is_empty() {
                o.str(g.wait_reason().as_str())
            } else {
                o.str(st.as_str())
            }
        }
    };
    if g.status() == GStatus::Waiting && g.wait_since() != 0 {
        let mins = now_coarse.saturating_sub(g.wait_since()) / 60_000_000_000;
        if mins >= 1 {
            o.str(", ")
                .dec(mins)
                .str(if mins == 1 { " minute" } else { " minutes" });
        }
    }
    if !g.locked_m_ptr().is_null() {
        o.str(", locked to thread");
    }
    if let Some(name) = g.name_static() {
        o.str(", name=").str(name);
    }
    o.str("]:").nl();
}

/// Prints `created by ... in goroutine N`.
pub fn created_by(o: &mut Out, g: &'static G) {
    if let Some(site) = g.spawn_site() {
        o.str("created by ")
            .str(site.file())
            .str(":")
            .dec(u64::from(site.line()));
        if g.parent_goid() != 0 {
            o.str(" in goroutine ").dec(g.parent_goid());
        }
        o.nl();
    }
}

/// Walks a parked G from its saved context.
pub fn capture_parked(f: &mut Frames, g: &G) -> bool {
    let (lo, hi) = g.stack_bounds();
    let sp = g.saved_sp();
    if lo == 0 || sp < lo || sp >= hi {
        return false;
    }
    // SAFETY: sp lies inside the G's stack, where its switch frame was
    // saved; a G that resumes meanwhile only makes the walk read stale
    // (bounds-checked) words.
    let r = unsafe { arch::context::saved_regs(sp) };
    f.capture(
        Regs {
            pc: r.pc,
            sp: r.sp,
            fp: r.fp,
            lr: r.lr,
        },
        &[(lo, hi)],
    );
    true
}

/// Prints every G except `skip` (the faulting one, already printed). In
/// `All` mode identical stacks are grouped.
pub fn other_gs(o: &mut Out, skip: Option<usize>, level: Level, now_coarse: u64) {
    let system = level >= Level::System;
    // Pass 1: group parked Gs by stack hash.
    let mut groups = [(0u64, 0usize, 0usize, [0u64; GROUP_IDS]); MAX_GROUPS];
    let mut ngroups = 0;
    let mut elided = 0usize;
    let mut f = Frames::new();
    for g in ALLGS.iter() {
        if Some(g.index) == skip || matches!(g.status(), GStatus::Idle | GStatus::Dead) {
            continue;
        }
        if g.status() != GStatus::Waiting && g.status() != GStatus::Runnable {
            // Running or in a syscall on another M: no saved context. Its M
            // prints it in crash mode.
            o.nl();
            header(o, g, None, now_coarse);
            o.str("\t(running on another M; its stack is in that M's section with GORT_TRACEBACK=crash)").nl();
            created_by(o, g);
            continue;
        }
        if !capture_parked(&mut f, g) {
            continue;
        }
        let h = f.hash(system) ^ (g.status() as u64) ^ ((g.wait_reason() as u64) << 8);
        match groups[..ngroups].iter_mut().find(|e| e.0 == h) {
            Some(e) => {
                if e.2 < GROUP_IDS {
                    e.3[e.2] = g.goid();
                }
                e.2 += 1;
            }
            None if ngroups < MAX_GROUPS => {
                groups[ngroups] = (h, g.index, 1, [0; GROUP_IDS]);
                groups[ngroups].3[0] = g.goid();
                ngroups += 1;
            }
            None => elided += 1,
        }
    }
    // Pass 2: print one stack per group.
    for e in &groups[..ngroups] {
        let Some(g) = ALLGS.get(e.1) else { continue };
        o.nl();
        header(o, g, None, now_coarse);
        if e.2 > 1 {
            o.str("(")
                .dec(e.2 as u64 - 1)
                .str(" more goroutines with this stack:");
            for &id in &e.3[1..e.2.min(GROUP_IDS)] {
                o.str(" ").dec(id);
            }
            if e.2 > GROUP_IDS {
                o.str(" ...");
            }
            o.str(")").nl();
        }
        if capture_parked(&mut f, g) {
            parked_stack(o, &f, system);
        }
        created_by(o, g);
    }
    if elided > 0 {
        o.nl();
        o.str("...")
            .dec(elided as u64)
            .str(" more goroutines elided (more than ")
            .dec(MAX_GROUPS as u64)
            .str(" distinct stacks)...")
            .nl();
    }
}

/// Prints the module list.
pub fn module_list(o: &mut Out) {
    o.nl();
    o.str("modules:").nl();
    let mut hex = [0u8; 80];
    for m in modules::modules() {
        o.str("module ")
            .str(&m.path)
            .str(" base=")
            .hex(m.base as u64);
        let id = m.build_id_hex(&mut hex);
        if !id.is_empty() {
            o.str(" build-id=").bytes(id);
        }
        o.nl();
    }
}
