//! Creating Gs.

use crate::engine::gfget;
use crate::engine::wakep_if_idle;
use crate::g::{Entry, GStatus};
use crate::m::current_m;
use crate::stack::StackError;
use crate::state::sched;
use core::fmt;
use std::sync::Arc;

/// Queued Gs on the spawning P from which `spawn` writes the first frame of
/// a G with an untouched stack itself (see `spawn_on`). Measured on
/// 1,000,000 parked Gs (2 Ps): 16 → 1.96 s, 64 → 2.1 s, 256 → 1.5 s,
/// 1,024 → 1.6 s, 8,192 → 1.9 s; without the help ~3.6 s.
const HELP_RUNQ_LEN: usize = 256;

/// What `spawn` needs besides the entry.
#[derive(Clone, Debug)]
pub struct SpawnOptions {
    /// Name shown in panics and dumps.
    pub name: Option<Arc<str>>,
    /// Usable stack bytes; `None` for the runtime's default.
    pub stack_size: Option<usize>,
    /// Where the spawning `go` call is.
    pub site: &'static core::panic::Location<'static>,
}

/// Why a G could not be created. Nothing was started and nothing leaked.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// No stack could be made (memory, the map limit, or the configured
    /// stack limit): the message names the cause.
    Stack(StackError),
    /// Called in a child of `fork`, where the runtime's threads do not
    /// exist (see `fork.rs`): exec after fork.
    ForkedChild,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Stack(e) => write!(f, "cannot create a G: {e}"),
            SpawnError::ForkedChild => f.write_str(
                "cannot create a G in a forked child: the runtime's threads stayed in the parent; \
                 call exec or _exit after fork",
            ),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Stack(e) => Some(e),
            SpawnError::ForkedChild => None,
        }
    }
}

/// Creates a G that runs `entry` and makes it runnable: next on the current
/// P when called from a G (as Go does), else on the global queue. Returns
/// the new G's id (the G itself may have finished and its struct been reused
/// by the time the caller looks).
pub fn spawn(entry: Arc<dyn Entry>, opts: SpawnOptions) -> Result<u64, SpawnError> {
    if crate::fork::in_forked_child() {
        return Err(SpawnError::ForkedChild);
    }
    let s = sched();
    let m = current_m();
    let lent = m.is_some_and(crate::engine::enter);
    let r = spawn_on(s, m, entry, opts);
    if lent && let Some(m) = m {
        crate::engine::leave_on(m);
    }
    r
}

fn spawn_on(
    s: &'static crate::state::Sched,
    m: Option<crate::m::MRef>,
    entry: Arc<dyn Entry>,
    opts: SpawnOptions,
) -> Result<u64, SpawnError> {
    let p = m.and_then(|m| m.p());
    let size = opts.stack_size.unwrap_or(s.config.stack_size);
    let g = gfget(p);
    let stack = match p {
        // SAFETY: the current M holds p, so it owns p's stack cache.
        Some(p) => unsafe { (*p.stacks.get()).alloc(&s.stacks, size) },
        None => s.stacks.alloc(size),
    };
    let stack = match stack {
        Ok(st) => st,
        Err(e) => {
            match p {
                Some(p) => crate::engine::gfput(p, g),
                None => s.gfree.lock().push(g),
            }
            return Err(SpawnError::Stack(e));
        }
    };
    let goid = match p {
        Some(p) => {
            if p.goid_next.get() == p.goid_end.get() {
                let start = s.goid_batch();
                p.goid_next.set(start);
                p.goid_end
                    .set(start + crate::state::Sched::goid_batch_len());
            }
            let id = p.goid_next.get();
            p.goid_next.set(id + 1);
            id
        }
        None => s.goid_one(),
    };
    let parent = m.and_then(|m| m.curg()).map_or(0, |g| g.goid());
    let untouched = stack.untouched();
    // The stack is left untouched: the M that first runs the G writes its
    // initial frame (`resume_sp` in `engine/glife.rs`), so a burst of spawns does not
    // take every first-touch page fault on the spawning thread. A saved sp
    // of 0 says "not started".
    // SAFETY: g came off a free list (Idle) and is ours; so is the stack.
    unsafe { g.prepare(goid, stack, 0, entry, opts.name, parent, opts.site) };
    // ...unless the Ms running the Gs fall behind: a burst of Gs that park
    // (rather than exit) needs a fresh stack page each, and the first write
    // to it, a page fault, is most of what it costs to run such a G. When
    // this P's queue is long and starting Gs find no warm stack to trade
    // for (`engine::no_warm_stacks`: Gs are not exiting), the spawner
    // takes that fault here instead, so the fault work splits between the
    // spawner and the runners rather than queueing behind the runners
    // (1,000,000 parked Gs: the runners' faults alone took ~2.5 s, for
    // ~1.2 s on the spawning side). Where Gs exit, the runners reuse warm
    // stacks and nobody faults. A plain-thread spawner looks at the global
    // queue, where its Gs go.
    if untouched
        && crate::engine::no_warm_stacks()
        && p.map_or_else(|| s.global.len(), |p| p.runq.len()) >= HELP_RUNQ_LEN
    {
        crate::engine::first_frame(g, None);
    }
    g.set_status(GStatus::Runnable);
    g.on_enqueue();
    match p {
        // SAFETY: the current M holds p.
        Some(p) => unsafe { p.runq.put(g, true) },
        None => s.push_global(g),
    }
    wakep_if_idle();
    Ok(goid)
}
