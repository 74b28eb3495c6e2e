//! The crash dump: G headers, frames, registers, modules.
//!
//! # Async-signal-safety
//!
//! Everything here runs inside a signal handler. It may: read atomics, walk
//! the append-only G and M registries, read stacks through the bounds-checked
//! unwinder, look symbols up in the table built at start-up, ask the
//! symbolizer thread for `file:line` ([`resolve::request`]) and read its
//! answer, and write with `write(2)` through [`Out`]. It may not: allocate,
//! format with `format!`, take a lock that ordinary code may hold, touch a
//! lazily initialised thread-local, or call `dladdr`/`dl_iterate_phdr`/
//! backtrace-rs.
//!
//! The functions take an [`Out`] and a [`Style`], not the signal context,
//! so a dump taken outside a signal handler prints the same grammar.
//!
//! # Grammar
//!
//! Go's, exactly, so Go's traceback parsers read it (docs/crash-format.md):
//!
//! ```text
//! (file lines start with a tab)
//! goroutine 17 [running]:
//! tour::read_null(...)
//!     /src/tour.rs:42 +0x13 fp=0x7f.. sp=0x7f.. pc=0x55..
//! created by tour::main in goroutine 1
//!     /src/tour.rs:17
//! ```
//!
//! gort's extras sit where those parsers accept them: `fp= sp= pc=` on
//! the file line (Go's `GOTRACEBACK=system` form), G names and stack groups
//! on lines of their own between goroutines, never inside one.

use crate::modules;
use crate::resolve::{self, Answer};
use crate::symbolize;
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
/// Go's line for frames left out (the middle of a deep stack, repeated
/// recursion, frames past the capture limit).
const ELIDED: &str = "...additional frames elided...";

/// A captured stack: pcs and stack pointers, innermost first.
#[derive(Debug)]
pub struct Frames {
    pcs: [usize; MAX_FRAMES],
    sps: [usize; MAX_FRAMES],
    n: usize,
}

impl Frames {
    /// An empty capture (lives on the handler's stack).
    pub const fn new() -> Frames {
        Frames {
            pcs: [0; MAX_FRAMES],
            sps: [0; MAX_FRAMES],
            n: 0,
        }
    }

    /// Walks from `regs` within `readable`.
    pub fn capture(&mut self, regs: Regs, readable: &[(usize, usize)]) {
        self.n = unwind::walk_with_sps(regs, readable, None, &mut self.pcs, &mut self.sps);
    }

    /// The captured pcs.
    pub fn pcs(&self) -> &[usize] {
        &self.pcs[..self.n]
    }

    /// The address that names frame `i`'s code: the pc itself for the
    /// first frame (where the signal hit or the G resumes), the call for a
    /// return address.
    fn lookup(&self, i: usize) -> usize {
        if i == 0 {
            self.pcs[i]
        } else {
            self.pcs[i].wrapping_sub(1)
        }
    }

    /// Whether `answer` has every frame's lookup address.
    pub fn covered_by(&self, answer: &Answer) -> bool {
        (0..self.n).all(|i| answer.covers(self.lookup(i)))
    }

    /// Adds every frame's lookup address to a symbolizer request.
    pub fn add_to(&self, req: &mut resolve::Request) {
        for i in 0..self.n {
            req.add(self.lookup(i));
        }
    }

    /// FNV-1a hash of the frames that would be printed (stack identity for
    /// grouping: Gs that parked through different runtime paths but show
    /// the same user frames form one group). Runtime frames are told by the
    /// start-up symbol table's names.
    fn hash(&self, system: bool) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (i, &pc) in self.pcs().iter().enumerate() {
            if !system
                && symbols::lookup(self.lookup(i)).is_some_and(|s| hidden_without_lines(s.name))
            {
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

/// How stacks print.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Runtime frames too (`GORT_TRACEBACK=system` and above).
    pub system: bool,
    /// The symbolizer's answer for the addresses printed: functions with
    /// inlined calls expanded and `file:line`. Without it (or for an
    /// address it does not cover), frames are named from the start-up
    /// symbol table and print `??:0`.
    pub answer: Option<&'static Answer>,
}

/// Without line tables the join packet's `run` stays visible: it is the
/// G's root frame, and in optimised builds the G's closure is inlined into
/// it, so hiding it would leave no user frame.
fn hidden_without_lines(name: &str) -> bool {
    symbolize::is_runtime_function(name) && !name.starts_with("<runtime::join::Packet")
}

/// Prints one physical frame (several lines when calls were inlined into
/// it). `keep_top`: the innermost source frame is shown even if it is the
/// runtime's (the exact pc of a running G: where the signal hit). Returns
/// whether anything printed.
fn frame(o: &mut Out, f: &Frames, i: usize, style: Style, keep_top: bool) -> bool {
    let pc = f.pcs[i];
    let lookup = f.lookup(i);
    let show = |s: &resolve::SourceFrame<'_>, first: bool| {
        style.system || (keep_top && first) || !symbolize::is_runtime_frame(s.function, s.file)
    };
    if let Some((mut source, entry)) = style.answer.and_then(|a| a.frames(lookup)) {
        // Inlined frames first; the suffix goes on the last line printed.
        let mut pending: Option<resolve::SourceFrame<'_>> = None;
        let mut first = true;
        let mut any = false;
        for s in source.by_ref() {
            if show(&s, first) {
                if let Some(p) = pending.take() {
                    source_lines(o, p);
                    o.nl();
                }
                pending = Some(s);
            }
            first = false;
        }
        if let Some(p) = pending {
            source_lines(o, p);
            let off = if entry != 0 && entry <= pc {
                pc - entry
            } else {
                symbols::lookup(lookup).map_or(0, |s| s.offset + (pc - lookup))
            };
            suffix(o, f, i, off);
            any = true;
        }
        return any;
    }
    let sym = symbols::lookup(lookup);
    let name = sym.map_or("?", |s| s.name);
    if !(style.system || keep_top && i == 0) && hidden_without_lines(name) {
        return false;
    }
    o.str(name).str("(...)").nl();
    o.str("\t??:0");
    suffix(o, f, i, sym.map_or(0, |s| s.offset + (pc - lookup)));
    true
}

/// `function(...)` and `\tfile:line` of a source frame (no newline).
fn source_lines(o: &mut Out, s: resolve::SourceFrame<'_>) {
    o.str(s.function).str("(...)").nl();
    if s.file.is_empty() {
        o.str("\t??:0");
    } else {
        o.str("\t").str(s.file).str(":").dec(u64::from(s.line));
    }
}

/// ` +0x<off> fp=0x… sp=0x… pc=0x…` and the newline. `fp` is the frame's
/// top (its caller's sp), as in Go.
fn suffix(o: &mut Out, f: &Frames, i: usize, off: usize) {
    if off > 0 {
        o.str(" +").hex(off as u64);
    }
    let fp = if i + 1 < f.n { f.sps[i + 1] } else { 0 };
    o.str(" fp=")
        .hex(fp as u64)
        .str(" sp=")
        .hex(f.sps[i] as u64)
        .str(" pc=")
        .hex(f.pcs[i] as u64)
        .nl();
}

/// Length of the repetition starting at `i` with period `p` (in copies).
fn repeats(pcs: &[usize], i: usize, p: usize) -> usize {
    let mut k = 1;
    while i + (k + 1) * p <= pcs.len() && pcs[i..i + p] == pcs[i + k * p..i + (k + 1) * p] {
        k += 1;
    }
    k
}

/// Prints the stack of a G a signal interrupted (or of an M's own stack):
/// runtime frames hidden unless `style.system`, except the exact top frame;
/// recursion and the middle of very deep stacks elided with Go's line.
pub fn stack(o: &mut Out, f: &Frames, style: Style) {
    stack_from(o, f, style, true);
}

/// [`stack`] for a parked G: its top frames are the runtime's park path,
/// hidden like the others.
pub fn parked_stack(o: &mut Out, f: &Frames, style: Style) {
    stack_from(o, f, style, false);
}

fn stack_from(o: &mut Out, f: &Frames, style: Style, exact_top: bool) {
    let pcs = f.pcs();
    let total = pcs.len();
    let mut printed = 0usize;
    let mut elided = false;
    let mut i = 0;
    while i < total {
        // Collapse direct or short-cycle recursion: one cycle, then Go's
        // elision line.
        if let Some((p, k)) = (1..=4)
            .map(|p| (p, repeats(pcs, i, p)))
            .find(|&(_, k)| k >= 4)
        {
            for j in 0..p {
                printed += frame(o, f, i + j, style, exact_top && i + j == 0) as usize;
            }
            o.str(ELIDED).nl();
            elided = true;
            i += k * p;
            continue;
        }
        if printed == EDGE_FRAMES && total - i > EDGE_FRAMES {
            o.str(ELIDED).nl();
            elided = true;
            i = total - EDGE_FRAMES;
            printed += 1;
            continue;
        }
        printed += frame(o, f, i, style, exact_top && i == 0) as usize;
        i += 1;
    }
    if total == MAX_FRAMES && !elided {
        // The outermost frames were not captured.
        o.str(ELIDED).nl();
    }
}

/// Prints a G's name line (if it has a name) and `goroutine N [status,
/// ...]:`. `status_override`: the state to print instead of the G's own
/// (`running` for the G a fault or abort interrupted, whatever sysmon last
/// saw of its thread).
pub fn header(o: &mut Out, g: &'static G, status_override: Option<&str>, now_coarse: u64) {
    if let Some(name) = g.name_static() {
        // Its own line before the header: Go's parsers accept lines between
        // goroutines, not inside the brackets.
        o.str("[goroutine ")
            .dec(g.goid())
            .str(" name: ")
            .str(name)
            .str("]")
            .nl();
    }
    o.str("goroutine ").dec(g.goid()).str(" [");
    // The wait reason of a parked G; `syscall` for a G in `runtime::syscall`
    // or whose thread sysmon found asleep in the kernel; else the status.
    let (state, since) = g.header_state();
    o.str(status_override.unwrap_or(state));
    if since != 0 {
        let mins = now_coarse.saturating_sub(since) / 60_000_000_000;
        if mins >= 1 {
            o.str(", ").dec(mins).str(" minutes");
        }
    }
    if !g.locked_m_ptr().is_null() {
        o.str(", locked to thread");
    }
    o.str("]:").nl();
}

/// Prints `created by <function> in goroutine N` and the spawn site's
/// `\t<file>:<line>`. The function holding the site and the file's full
/// path come from the symbolizer's answer (`style.answer`, which the
/// dump's request asked for with [`add_site`]); without it, the module
/// path the file stands for and the file as `Location` names it.
pub fn created_by(o: &mut Out, g: &'static G, style: Style) {
    let Some(site) = g.spawn_site() else { return };
    let found = style.answer.and_then(|a| a.site(site));
    o.str("created by ");
    match found {
        Some((function, _)) => {
            o.str(function);
        }
        None => spawner_name(o, site.file()),
    }
    if g.parent_goid() != 0 {
        o.str(" in goroutine ").dec(g.parent_goid());
    }
    o.nl();
    let file = found.map_or(site.file(), |(_, path)| path);
    o.str("\t")
        .str(file)
        .str(":")
        .dec(u64::from(site.line()))
        .nl();
}

/// Adds `g`'s spawn site to a symbolizer request (for [`created_by`]).
pub fn add_site(req: &mut resolve::Request, g: &G) {
    if let Some(site) = g.spawn_site() {
        req.add_site(site);
    }
}

/// The spawner as a Rust path guessed from its file (`src/bin/x.rs` ->
/// `x`, `src/net/tcp.rs` -> `net::tcp`): the spawn site records a file
/// and line, not a function.
fn spawner_name(o: &mut Out, file: &str) {
    let rel = match file.rfind("/src/") {
        Some(i) => &file[i + 5..],
        None => file.strip_prefix("src/").unwrap_or(file),
    };
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let rel = rel.strip_prefix("bin/").unwrap_or(rel);
    let rel = rel
        .strip_suffix("/mod")
        .or_else(|| rel.strip_suffix("/main"))
        .unwrap_or(rel);
    let mut first = true;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if !first {
            o.str("::");
        }
        o.str(part);
        first = false;
    }
    if first {
        o.str("?");
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

/// The Gs other than the faulting one, grouped by identical stack and
/// state (pass 1 of printing them; lives on the dumping thread's stack).
#[derive(Debug)]
pub struct Groups {
    /// (hash, representative's index in ALLGS, members, first member ids).
    groups: [(u64, usize, usize, [u64; GROUP_IDS]); MAX_GROUPS],
    n: usize,
    /// Gs running on other Ms (no saved context), by ALLGS index.
    running: [usize; MAX_GROUPS],
    n_running: usize,
    /// Gs left out past `MAX_GROUPS` distinct stacks.
    elided: usize,
}

impl Groups {
    /// Groups every live G except `skip` (the faulting one, printed first).
    pub fn collect(skip: Option<usize>, system: bool) -> Groups {
        let mut gs = Groups {
            groups: [(0, 0, 0, [0; GROUP_IDS]); MAX_GROUPS],
            n: 0,
            running: [0; MAX_GROUPS],
            n_running: 0,
            elided: 0,
        };
        let mut f = Frames::new();
        for g in ALLGS.iter() {
            if Some(g.index) == skip || matches!(g.status(), GStatus::Idle | GStatus::Dead) {
                continue;
            }
            if g.status() != GStatus::Waiting && g.status() != GStatus::Runnable {
                // Running or in a syscall on another M: no saved context.
                if gs.n_running < MAX_GROUPS {
                    gs.running[gs.n_running] = g.index;
                    gs.n_running += 1;
                } else {
                    gs.elided += 1;
                }
                continue;
            }
            if !capture_parked(&mut f, g) {
                continue;
            }
            // Named Gs stand alone: their name line belongs to one G.
            let named = g.name_static().map_or(0, |_| g.goid());
            let h = f.hash(system) ^ (g.status() as u64) ^ ((g.wait_reason() as u64) << 8) ^ named;
            match gs.groups[..gs.n].iter_mut().find(|e| e.0 == h) {
                Some(e) => {
                    if e.2 < GROUP_IDS {
                        e.3[e.2] = g.goid();
                    }
                    e.2 += 1;
                }
                None if gs.n < MAX_GROUPS => {
                    gs.groups[gs.n] = (h, g.index, 1, [0; GROUP_IDS]);
                    gs.groups[gs.n].3[0] = g.goid();
                    gs.n += 1;
                }
                None => gs.elided += 1,
            }
        }
        gs
    }

    /// Adds the frames the groups will print to a symbolizer request.
    pub fn add_to(&self, req: &mut resolve::Request) {
        let mut f = Frames::new();
        for e in &self.groups[..self.n] {
            if let Some(g) = ALLGS.get(e.1)
                && capture_parked(&mut f, g)
            {
                f.add_to(req);
                add_site(req, g);
            }
        }
        for &gi in &self.running[..self.n_running] {
            if let Some(g) = ALLGS.get(gi) {
                add_site(req, g);
            }
        }
    }

    /// The Gs running on other Ms (no saved context), by `ALLGS` index.
    pub fn running(&self) -> &[usize] {
        &self.running[..self.n_running]
    }

    /// Prints one stack per group, then the Gs running elsewhere.
    pub fn print(&self, o: &mut Out, style: Style, now_coarse: u64) {
        self.print_with(o, style, now_coarse, &mut |_| None);
    }

    /// [`print`](Self::print), with the stacks of running Gs where
    /// `running(index)` has one (a live dump asks each G's M for it; a
    /// crash dump cannot, and its relay prints them in crash mode).
    pub fn print_with<'f>(
        &self,
        o: &mut Out,
        style: Style,
        now_coarse: u64,
        running: &mut dyn FnMut(usize) -> Option<&'f Frames>,
    ) {
        let mut f = Frames::new();
        for e in &self.groups[..self.n] {
            let Some(g) = ALLGS.get(e.1) else { continue };
            o.nl();
            header(o, g, None, now_coarse);
            if capture_parked(&mut f, g) {
                parked_stack(o, &f, style);
            }
            created_by(o, g, style);
            if e.2 > 1 {
                // After the goroutine's blank line: Go's parsers take it
                // as text between goroutines.
                o.nl();
                o.str("[")
                    .dec(e.2 as u64 - 1)
                    .str(" more goroutines with the stack of goroutine ")
                    .dec(e.3[0])
                    .str(":");
                for &id in &e.3[1..e.2.min(GROUP_IDS)] {
                    o.str(" ").dec(id);
                }
                if e.2 > GROUP_IDS {
                    o.str(" ...");
                }
                o.str("]").nl();
            }
        }
        for &gi in &self.running[..self.n_running] {
            let Some(g) = ALLGS.get(gi) else { continue };
            if matches!(g.status(), GStatus::Idle | GStatus::Dead) {
                // Ended since it was listed (a live dump: the program runs).
                continue;
            }
            o.nl();
            // The G writing a live dump runs it, though sysmon may have
            // seen its thread asleep waiting for the symbolizer.
            let me = scheduler::current_g().is_some_and(|c| c.index == g.index);
            header(o, g, me.then_some("running"), now_coarse);
            match running(gi) {
                Some(f) => stack(o, f, style),
                None => {
                    // Go's line; in crash mode the G's M prints its stack.
                    o.str("\tgoroutine running on other thread; stack unavailable")
                        .nl();
                }
            }
            created_by(o, g, style);
        }
        if self.elided > 0 {
            o.nl();
            o.str("[")
                .dec(self.elided as u64)
                .str(" more goroutines elided: more than ")
                .dec(MAX_GROUPS as u64)
                .str(" distinct stacks]")
                .nl();
        }
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
