//! `sysmon`: the monitor thread that retakes Ps from Ms stuck in syscalls,
//! blocked in the kernel in plain code, or stuck in a G's own code, and
//! polls the network when nobody else does.
//!
//! It is a plain thread, not an M: it holds no P and runs no G. It wakes
//! every 20 µs while some M is in a syscall, backing off to 10 ms otherwise,
//! and sleeps until the next syscall or the next P to leave the idle list
//! when the runtime is idle, so an idle runtime costs nothing. (One
//! exception: when every G is parked and the last deadlock check found a
//! thread it could not account for, it wakes after 0.5 s, then 1, 2, 4 and
//! every 8 s, to look again.)
//!
//! - A P whose M has been in the same syscall for a whole period is retaken
//!   when other work waits (its local queue or the global queue is not
//!   empty, or no M is idle or spinning to pick work up) or after 10 ms
//!   regardless, and handed to another M (Go's `retake`).
//! - A P *lent* to a G's user code (`PStatus::Lent`, see `engine/lend.rs`)
//!   whose M's thread is asleep in the kernel — plain code that blocked
//!   without telling the runtime: `std::thread::sleep`, blocking std I/O,
//!   a std lock, a C library — is retaken by the same rule as a syscall,
//!   ~20 µs after sysmon first saw it there. How sysmon knows, and what it
//!   costs, is under *Plain blocking code* below.
//! - A P lent to the same stretch of a G's user code while its thread runs
//!   for a whole slice (10 ms) is retaken when work waits for it (its
//!   queue, the global queue, a due timer): a long loop without a runtime
//!   call. The M keeps running that G without a P and takes a P back at the
//!   G's next runtime call; its `preempt` flag makes `preempt_point` yield,
//!   and its thread's priority is lowered meanwhile (`m::Demotion`).
//! - When Gs wait for I/O, no M is blocked in netpoll and nobody polled for
//!   10 ms (every P busy), it polls and queues the ready Gs globally.
//!
//! Before it sleeps deeply on an idle runtime it also scavenges pooled G
//! stacks (gives their pages back above the high-water mark).
//!
//! # Plain blocking code
//!
//! An M lends its P at every return to user code, with a fresh sequence
//! number in the P's state word. At each look sysmon reads, for every lent
//! P, the CPU clock of the lending thread (`thread_state::cpu_ns`, ~0.2 µs).
//! When the word is the one it saw last time, at least 20 µs ago, and the
//! clock has not moved, the thread has not run since: it is asleep in the
//! kernel, or runnable and waiting for a CPU. `/proc/self/task/TID/stat`
//! (~2.8 µs, read only then) tells the two apart; only a thread asleep
//! loses its P. A thread waiting for a CPU keeps it — handing its P to yet
//! another thread would only add to the queue for CPUs.
//!
//! Two looks are needed, 20 µs apart, while sysmon sleeps up to 10 ms
//! between looks when nothing happens (a wake-up costs it 10–20 µs of CPU
//! on a VM, so it cannot look every 20 µs for long). So:
//!
//! - a look that finds a new lent word, or a thread that ran in a stretch
//!   younger than 200 µs, on a P that others wait for, is followed by
//!   another 20 µs later (at most four in a row, and a follow-up's fresh
//!   word only in a chain a nudge started), which catches a thread that
//!   blocked since; so is a look an M nudged (below), since that M had not
//!   yet lent its P, and a nudged look that finds the thread already
//!   asleep watches its clock on the spot instead;
//! - an M that readies a G while every P is held (`wakep_if_idle` finds no
//!   idle P) *nudges* a sleeping sysmon awake: the G it readied waits for a
//!   P, and a thread holding one may be about to block. That is the common
//!   shape — a G wakes another, then blocks. sysmon accepts one nudge per
//!   5 ms, which keeps a busy program from waking it more than ~200 times
//!   a second (one relaxed load on the M's side otherwise).
//!
//! The race of a thread that leaves the kernel just as sysmon retakes its
//! P is the lent-P race of `engine/lend.rs` unchanged: the retake goes through
//! `Retaking` and the M's claim (`P::take_back_lent` has the table), so
//! either the M keeps its P or it finds it gone at its next runtime call.
//!
//! # Short blocks
//!
//! A thread asleep for 20 µs is often asleep for much longer (a sleep, a
//! read), but not always: under load, Gs contend for locks they did not
//! write — `malloc`'s arenas, a std `Mutex` — and each contended wait is a
//! short `futex` sleep. Retaking on each starts or wakes another M, which
//! adds to the contention, which adds Ms (178 threads for 10,000 Gs
//! opening sockets, before this rule). So sysmon judges its own kernel
//! retakes: one whose thread was back within 250 µs doubles the time a
//! stretch must have lasted before a retake (up to 5 ms), one that held
//! longer halves it (down to 20 µs). A program that blocks for real (a
//! sleep, I/O, a barrier) keeps the 20 µs rule.
//!
//! Where `/proc` cannot be read, a clock that stood still over two looks
//! counts as asleep. Where the CPU clock cannot be read, only the slice
//! rule applies.
//!
//! # Limits
//!
//! A retake that needs a new thread when `GORT_MAX_THREADS` are running is
//! not made: the P stays with the blocked M (the program stalls until it
//! returns, it does not fail), a warning names the limit once, and
//! `stats().thread_limit_stalls` counts each time.

use crate::bell::{NUDGEABLE, NUDGED_AT, PARKED, WAKE, WAKE_CV};
use crate::clock::nanotime;
use crate::engine::AtLimit;
use crate::g::GRef;
use crate::m::MRef;
use crate::p::{P, PStatus};
use crate::preempt::SLICE_NS;
use crate::state::sched;
use crate::stats::{RETAKES_KERNEL, RETAKES_SLICE, RETAKES_SYSCALL, THREAD_LIMIT_STALLS, count};
use crate::thread_state::{RunState, StatFile, cpu_ns};
use core::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A syscall longer than this may lose its P when other work waits; so may
/// a thread seen asleep in the kernel for this long.
const RETAKE_AFTER_NS: u64 = 20_000;
/// The shortest watch of a thread's clock after a nudge (see
/// [`Monitor::lent_p`]).
const WATCH_NS: u64 = 10_000;
/// A syscall longer than this loses its P regardless.
const FORCE_RETAKE_NS: u64 = 10_000_000;
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
/// A stretch of user code younger than this that ran since the last look
/// is looked at again [`MIN_DELAY`] later: a G often runs a little after a
/// runtime call, then blocks.
const YOUNG_NS: u64 = 200_000;
/// Follow-up looks in a row at most.
const MAX_FOLLOW_UPS: u32 = 4;
/// sysmon accepts at most one nudge per this long.
const NUDGE_GAP: Duration = Duration::from_millis(5);
/// sysmon polls the network when nobody did for this long.
const POLL_STALE_NS: u64 = 10_000_000;
/// Rounds without any syscall before sysmon sleeps until the next one.
const IDLE_ROUNDS: u32 = 50;

/// While the last deadlock check was unsure (`deadlock::dead_unsure`),
/// sysmon asleep on an idle runtime looks again after this, doubling up to
/// [`UNSURE_RECHECK_MAX`].
const UNSURE_RECHECK_MIN: Duration = Duration::from_millis(500);
const UNSURE_RECHECK_MAX: Duration = Duration::from_secs(8);

/// Starts the sysmon thread (once).
pub(crate) fn start() {
    let spawned = std::thread::Builder::new()
        .name("gort-sysmon".into())
        .stack_size(128 * 1024)
        .spawn(run);
    if spawned.is_err() {
        crate::throw!("sysmon: cannot create its thread");
    }
}

/// Gs wait for I/O but no M is blocked in netpoll (it raced with them
/// parking): sysmon's stale-poll is what wakes them.
fn io_unwatched() -> bool {
    crate::netpoll::waiting() != 0 && !crate::netpoll::blocked()
}

/// Sleeps `d`. A sleep longer than [`MIN_DELAY`] ends early if an M nudges
/// — but sysmon accepts at most one nudge per [`NUDGE_GAP`]: before
/// `last_nudge + NUDGE_GAP` it sleeps plainly. Returns whether a nudge
/// woke it (and then updates `last_nudge`).
fn nap(d: Duration, last_nudge: &mut Option<u64>) -> bool {
    let start = nanotime();
    if d <= MIN_DELAY {
        std::thread::sleep(d);
        return false;
    }
    let end = start.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    if let Some(open) = last_nudge.map(|t| t + NUDGE_GAP.as_nanos() as u64)
        && open > start
    {
        if open >= end {
            std::thread::sleep(d);
            return false;
        }
        std::thread::sleep(Duration::from_nanos(open - start));
    }
    let end = crate::clock::instant_of(end);
    let mut w = WAKE.lock();
    *w = false;
    // SeqCst: not a StoreLoad pair: `nudge` swaps this word (AcqRel) and then
    // takes `WAKE`, which orders the rest; Release would do.
    NUDGEABLE.store(true, Ordering::SeqCst);
    while !*w && !w.wait_until(&WAKE_CV, end) {}
    // SeqCst: as the store above.
    let nudged = !NUDGEABLE.swap(false, Ordering::SeqCst);
    *w = false;
    if nudged {
        *last_nudge = Some(nanotime());
    }
    nudged
}

/// What sysmon remembers of one P between looks.
#[derive(Debug, Default)]
struct Watch {
    /// The state word seen last and when it was first seen.
    word: u64,
    since: u64,
    /// The lending thread, its CPU time at the last look, and when.
    tid: i32,
    cpu: Option<u64>,
    looked: u64,
    /// That thread's `/proc` stat file, kept open.
    stat: StatFile,
    /// The blocking log's note on this stretch.
    log: BlockLog,
    /// This stretch was counted as a thread-limit stall.
    stalled: bool,
    /// The G this look labelled as blocked in the kernel
    /// ([`G::blocked_since`](crate::g::G::blocked_since)), to unlabel when
    /// its thread runs again or makes a runtime call.
    labelled: Option<GRef>,
}

impl Watch {
    /// Drops the label this P's look put on a G, if it is still there (not
    /// once a crash dump has begun: see `fatal::dumping`).
    fn unlabel(&mut self) {
        if let Some(g) = self.labelled.take()
            && !crate::fatal::dumping()
        {
            g.set_blocked_since(0);
        }
    }
}

/// An M sysmon took a lent P from, until its G's next runtime call: to
/// lower its priority once it runs without the P, to drop the `syscall`
/// label of a G whose thread woke, and for the blocking log.
#[derive(Debug)]
struct PLess {
    m: MRef,
    g: Option<GRef>,
    tid: i32,
    cpu: Option<u64>,
    /// When the stretch began (runtime clock).
    since: u64,
    /// When the P was retaken, if for a block in the kernel.
    kernel_retake_at: Option<u64>,
    /// The blocking log's note, carried over from the P's watch.
    log: BlockLog,
}

/// Whether thread `tid`, whose CPU clock read `cpu` just now, uses no CPU
/// until `end` (runtime clock): sysmon watches the clock that long (a read
/// every ~0.3 µs), stopping at the first tick.
fn still(tid: i32, cpu: Option<u64>, end: u64) -> bool {
    if cpu.is_none() {
        return false;
    }
    while nanotime() < end {
        if cpu_ns(tid) != cpu {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Why a P was retaken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Kernel,
    Slice,
}

/// sysmon's state across looks.
struct Monitor {
    watch: Vec<Watch>,
    pless: Vec<PLess>,
    log_ns: Option<u64>,
    /// How long a G's stretch must have lasted before its thread, seen
    /// asleep, loses the P: [`RETAKE_AFTER_NS`], doubled after each retake
    /// whose thread was back within [`SHORT_BLOCK_NS`], halved after each
    /// longer one (see the module docs, "Short blocks").
    kernel_after: u64,
}

/// A retake whose thread came back sooner than this bought nothing: the
/// thread blocked only briefly (a contended lock in `malloc`, say).
const SHORT_BLOCK_NS: u64 = 250_000;
/// The most [`Monitor::kernel_after`] grows to.
const KERNEL_AFTER_MAX_NS: u64 = 5_000_000;

/// What one look found.
#[derive(Default)]
struct Look {
    in_syscall: bool,
    retook: bool,
    follow_up: bool,
}

/// Whether Gs wait for `p`: its queue, the global queue, a due timer.
fn work_waits(p: &P, now: u64) -> bool {
    !p.runq.is_empty() || !sched().global.is_empty() || p.timers.next_when() <= now
}

/// Whether nobody (no idle P, no spinning M) could pick up new work.
fn nobody_free() -> bool {
    let s = sched();
    s.nmspinning() + s.npidle() == 0
}

/// Whether handing a P with work on to another M can find a thread:
/// an idle M, or room under `GORT_MAX_THREADS` for a new one.
fn thread_available() -> bool {
    let s = sched();
    s.nmidle() > 0 || crate::mlist::thread_room(s.config.max_threads)
}

static STALL_WARNED: AtomicBool = AtomicBool::new(false);

/// [`thread_limit_stall`] once per stretch of a blocked M.
fn stall_once(stalled: &mut bool) {
    if !*stalled {
        *stalled = true;
        thread_limit_stall();
    }
}

/// A P stays with a blocked M: count it and warn once.
pub(crate) fn thread_limit_stall() {
    count(&THREAD_LIMIT_STALLS);
    if !STALL_WARNED.swap(true, Ordering::Relaxed) {
        let c = &sched().config;
        eprintln!(
            "gort: a G blocked its thread, and handing its P to another thread would \
             exceed the limit of {} threads gort creates (max_threads, set by {}): \
             other Gs wait until a blocked thread returns (counted in \
             stats().thread_limit_stalls; said once)",
            c.max_threads, c.max_threads_source
        );
    }
}

impl Monitor {
    fn new() -> Monitor {
        let s = sched();
        Monitor {
            watch: (0..s.procs()).map(|_| Watch::default()).collect(),
            pless: Vec::new(),
            log_ns: s.config.blocking_log.map(|d| d.as_nanos() as u64),
            kernel_after: RETAKE_AFTER_NS,
        }
    }

    /// One look at every P. `follow_up`: this look settles what the last
    /// one saw; `nudged`: an M woke sysmon for this look or the chain of
    /// follow-ups it belongs to (see [`Monitor::lent_p`]).
    fn look(&mut self, now: u64, follow_up: bool, nudged: bool) -> Look {
        let s = sched();
        let mut out = Look::default();
        let mut watch = core::mem::take(&mut self.watch);
        for (p, w) in s.ps.iter().zip(watch.iter_mut()) {
            let word = p.state_word();
            let status = word & 0xff;
            if status == PStatus::Syscall as u64 {
                out.in_syscall = true;
                self.syscall_p(p, w, word, now, &mut out);
            } else if status == PStatus::Lent as u64 {
                self.lent_p(p, w, word, now, (follow_up, nudged), &mut out);
            } else {
                w.unlabel();
                if w.word != 0 {
                    w.log.finish(now.saturating_sub(w.since));
                }
                w.word = 0;
            }
        }
        self.watch = watch;
        self.pless_look(now);
        out
    }

    /// A P set aside by `runtime::syscall` (Go's rule).
    fn syscall_p(&mut self, p: &'static P, w: &mut Watch, word: u64, now: u64, out: &mut Look) {
        if w.word != word {
            w.word = word;
            w.since = now;
            w.stalled = false;
            return;
        }
        let long = now.saturating_sub(w.since);
        if long < RETAKE_AFTER_NS {
            return;
        }
        let work = work_waits(p, now);
        if !(work || nobody_free() || long >= FORCE_RETAKE_NS) {
            return;
        }
        if work && !thread_available() {
            stall_once(&mut w.stalled);
            return;
        }
        if p.retake(word, None) {
            count(&RETAKES_SYSCALL);
            out.retook = true;
            crate::engine::hand_off_p_or(p, AtLimit::Stall);
        }
    }

    /// A P lent to a G's user code: blocked in the kernel, or a whole
    /// slice of running code.
    fn lent_p(
        &mut self,
        p: &'static P,
        w: &mut Watch,
        word: u64,
        now: u64,
        (follow_up, nudged): (bool, bool),
        out: &mut Look,
    ) {
        // While the word is unchanged the P stays with this M (the sequence
        // number changes at every lend), so the CAS of a retake confirms it.
        let m = p.m.load(Ordering::Relaxed);
        // SAFETY: p.m holds null or a 'static M.
        let Some(m) = (unsafe { m.as_ref() }) else {
            return;
        };
        let tid = m.tid();
        let need = || work_waits(p, now) || nobody_free();
        if w.word != word || w.tid != tid {
            w.unlabel();
            w.log.finish(now.saturating_sub(w.since));
            w.word = word;
            w.since = now;
            w.tid = tid;
            w.cpu = cpu_ns(tid);
            w.looked = now;
            w.stalled = false;
            if !need() {
                return;
            }
            // An M that readied a G nudged sysmon, and the thread holding
            // this P is already asleep: the common "wake a G, then block"
            // shape. Watch its clock right here rather than sleep and wake
            // again (a timer wake-up takes 40-60 µs on a busy VM): until
            // 20 µs after the nudge — the G was readied before its M lent
            // the P and blocked — and for at least 10 µs of our own watch.
            let until = (NUDGED_AT.load(Ordering::Relaxed) + RETAKE_AFTER_NS).max(now + WATCH_NS);
            if nudged
                && self.kernel_after == RETAKE_AFTER_NS
                && w.stat.state(tid) == Some(RunState::Asleep)
                && still(tid, w.cpu, until)
            {
                w.looked = nanotime();
                self.asleep(p, w, m, word, w.looked, out);
                return;
            }
            // A fresh stretch: one more look soon tells whether it blocks.
            // Not again from a follow-up (a busy P shows a fresh word at
            // every look), unless an M's nudge started the chain.
            out.follow_up |= !follow_up || nudged;
            return;
        }
        let age = now.saturating_sub(w.since);
        let interval = now.saturating_sub(w.looked);
        let cpu = cpu_ns(tid);
        let ran = match (cpu, w.cpu) {
            (Some(a), Some(b)) => a != b,
            // No clock: only the slice rule applies.
            _ => true,
        };
        w.cpu = cpu;
        w.looked = now;
        let asleep =
            !ran && interval >= RETAKE_AFTER_NS && w.stat.state(tid) != Some(RunState::Runnable);
        if asleep {
            self.asleep(p, w, m, word, now, out);
            return;
        }
        if ran {
            w.unlabel();
        }
        self.note_log(&mut w.log, m, age, false);
        if age >= SLICE_NS && work_waits(p, now) {
            // A whole slice of the G's own code (running, or runnable and
            // waiting for a CPU on a busy host).
            if self.retake_lent(p, m, word, Cause::Slice, true, w) {
                out.retook = true;
            }
        } else if ran {
            // A young stretch may block next; a long computation is left
            // to the slow looks and the slice (looking twice per slow look
            // at every busy P cost sysmon 4-8x its CPU time).
            if age < YOUNG_NS && need() {
                out.follow_up = true;
            }
        } else if need() {
            // Waiting for a CPU, or compared over too short a time.
            out.follow_up = true;
        }
    }

    /// The thread lending `p` has been asleep in the kernel since the last
    /// look: label its G, and retake by the syscall rule.
    fn asleep(
        &mut self,
        p: &'static P,
        w: &mut Watch,
        m: MRef,
        word: u64,
        now: u64,
        out: &mut Look,
    ) {
        let age = now.saturating_sub(w.since);
        if let Some(g) = m.curg()
            && g.blocked_since().is_none()
        {
            g.set_blocked_since(crate::clock::coarse_now());
            w.labelled = Some(g);
        }
        self.note_log(&mut w.log, m, age, true);
        if age < self.kernel_after {
            // Blocks have been short lately: give this one longer.
            out.follow_up = true;
            return;
        }
        let work = work_waits(p, now);
        if (work || nobody_free() || age >= FORCE_RETAKE_NS)
            && self.retake_lent(p, m, word, Cause::Kernel, work, w)
        {
            out.retook = true;
        }
    }

    /// Takes `m`'s lent P and hands it on. Returns whether it did.
    fn retake_lent(
        &mut self,
        p: &'static P,
        m: MRef,
        word: u64,
        cause: Cause,
        work: bool,
        w: &mut Watch,
    ) -> bool {
        if work && !thread_available() {
            stall_once(&mut w.stalled);
            return false;
        }
        let since = w.since;
        crate::preempt::arm_demotion(m);
        if !p.retake(word, Some(&m.claim)) {
            crate::preempt::disarm_demotion(m);
            return false;
        }
        count(match cause {
            Cause::Kernel => &RETAKES_KERNEL,
            Cause::Slice => &RETAKES_SLICE,
        });
        m.preempt.store(true, Ordering::Relaxed);
        let tid = m.tid();
        if cause == Cause::Slice {
            // It runs: lower its priority now.
            crate::preempt::demote(m);
        }
        // The label, if any, now belongs to the P-less watch below.
        w.labelled = None;
        self.pless.retain(|e| !core::ptr::eq(e.m, m));
        self.pless.push(PLess {
            m,
            g: m.curg(),
            tid,
            cpu: cpu_ns(tid),
            since,
            kernel_retake_at: (cause == Cause::Kernel).then(nanotime),
            log: core::mem::take(&mut w.log),
        });
        crate::engine::hand_off_p_or(p, AtLimit::Stall);
        true
    }

    /// Ms running a G without its P since a retake.
    fn pless_look(&mut self, now: u64) {
        let log_ns = self.log_ns;
        let kernel_after = &mut self.kernel_after;
        self.pless.retain_mut(|e| {
            let age = now.saturating_sub(e.since);
            if !crate::preempt::awaiting_return(e.m) {
                // Back at a runtime call.
                e.log.finish(age);
                if let Some(at) = e.kernel_retake_at {
                    let held = e.m.returned_at.load(Ordering::Relaxed).saturating_sub(at);
                    *kernel_after = if held < SHORT_BLOCK_NS {
                        (*kernel_after * 2).min(KERNEL_AFTER_MAX_NS)
                    } else {
                        (*kernel_after / 2).max(RETAKE_AFTER_NS)
                    };
                }
                return false;
            }
            let cpu = cpu_ns(e.tid);
            let ran = cpu != e.cpu;
            if ran {
                // It runs its G's code without a P: it must not take CPU
                // from the Gs that hold one.
                e.cpu = cpu;
                if let Some(g) = e.g
                    && !crate::fatal::dumping()
                {
                    g.set_blocked_since(0);
                }
                crate::preempt::demote(e.m);
            }
            if let Some(t) = log_ns {
                e.log.note(t, e.m, e.g, age, !ran);
            }
            true
        });
    }

    fn note_log(&self, log: &mut BlockLog, m: MRef, age: u64, asleep: bool) {
        if let Some(t) = self.log_ns {
            log.note(t, m, m.curg(), age, asleep);
        }
    }

    /// Whether the blocking log still owes a line: sysmon must not sleep
    /// deeply.
    fn log_pending(&self) -> bool {
        self.pless.iter().any(|e| e.log.noted.is_some())
    }
}

/// The blocking log (`GORT_BLOCKING_LOG`) for one stretch of a G keeping its
/// thread: a line when it passes the threshold (which G, where, so that a G
/// blocked for good is reported at once), and a line with the whole time
/// when the stretch ends, if the program is still running then (sysmon
/// sees the end at its next look, within 10 ms).
#[derive(Debug, Default)]
struct BlockLog {
    /// Who, once past the threshold.
    noted: Option<String>,
}

impl BlockLog {
    fn note(&mut self, threshold: u64, m: MRef, g: Option<GRef>, age: u64, asleep: bool) {
        if age < threshold || self.noted.is_some() {
            return;
        }
        eprintln!(
            "gort: {} has kept its thread from the runtime for {} so far",
            describe_block(m, g, asleep),
            millis(age)
        );
        self.noted = Some(match g {
            Some(g) => match g.name() {
                Some(name) => format!("goroutine {} '{name}'", g.goid()),
                None => format!("goroutine {}", g.goid()),
            },
            None => format!("the G on m={}", m.id),
        });
    }

    fn finish(&mut self, age: u64) {
        if let Some(who) = self.noted.take() {
            eprintln!("gort: {who} gave its thread back after {}", millis(age));
        }
    }
}

fn millis(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// Who keeps a thread and where, for the blocking log: `goroutine 7 'name'
/// (m=3, tid 4711), asleep in the kernel in read called at pc=0x...
/// (read+0x4c in libc.so.6), created at src/main.rs:12:5,`.
fn describe_block(m: MRef, g: Option<GRef>, asleep: bool) -> String {
    use std::fmt::Write as _;
    let mut line = String::new();
    match g {
        Some(g) => {
            let _ = write!(line, "goroutine {} ", g.goid());
            if let Some(name) = g.name() {
                let _ = write!(line, "'{name}' ");
            }
        }
        None => line.push_str("a G "),
    }
    let _ = write!(line, "(m={}, tid {})", m.id, m.tid());
    if asleep {
        line.push_str(", asleep in the kernel");
        if let Some((nr, pc)) = crate::thread_state::syscall_of(m.tid()) {
            match crate::thread_state::syscall_name(nr) {
                Some(name) => {
                    let _ = write!(line, " in {name}");
                }
                None => {
                    let _ = write!(line, " in syscall {nr}");
                }
            }
            let _ = write!(line, " called at pc=0x{pc:x}");
            if let Some(name) = crate::thread_state::describe_pc(pc as usize) {
                let _ = write!(line, " ({name})");
            }
        }
    } else {
        line.push_str(", running its own code");
    }
    if let Some(site) = g.and_then(|g| g.spawn_site()) {
        let _ = write!(line, ", created at {site},");
    }
    line
}

fn run() {
    // Precise short sleeps: the default 50 µs timer slack would make each
    // 20 µs look a 70 µs one.
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0) };
    crate::preempt::probe_restore();
    let s = sched();
    let mut mon = Monitor::new();
    // With the blocking log on, look at least twice per threshold.
    let max_delay = mon
        .log_ns
        .map_or(MAX_DELAY, |t| MAX_DELAY.min(Duration::from_nanos(t / 2)));
    let mut delay = MIN_DELAY;
    let mut sleep_for = MIN_DELAY;
    let mut follow_ups = 0u32;
    // This look and its follow-ups answer a nudge.
    let mut nudged_chain = false;
    let mut quiet = 0u32;
    let mut last_nudge = None;
    let mut woken = Vec::new();
    // Netpoll count at sysmon's last look, when that was, and its verdict.
    let (mut polls_seen, mut last_poll_look, mut stale) = (0u64, 0u64, false);
    loop {
        let nudged = nap(sleep_for, &mut last_nudge);
        nudged_chain |= nudged;
        crate::clock::refresh_coarse_now();
        let now = nanotime();
        let mut look = mon.look(now, follow_ups > 0, nudged_chain);
        // A nudge comes from an M that is still in the runtime (it readied
        // a G and has not yet returned to its code, or blocked): its P is
        // not lent yet. Look again soon.
        look.follow_up |= nudged;
        // Every P busy and nobody polled the network for a while.
        if now.saturating_sub(last_poll_look) >= POLL_STALE_NS {
            last_poll_look = now;
            stale = crate::netpoll::stale(&mut polls_seen);
        }
        if stale {
            stale = false;
            woken.clear();
            crate::netpoll::poll_ready(&mut woken);
            for &g in &woken {
                s.push_global(g);
            }
            if !woken.is_empty() {
                crate::engine::wakep_if_idle();
            }
        }
        if look.in_syscall || look.retook {
            delay = MIN_DELAY;
            sleep_for = MIN_DELAY;
            follow_ups = 0;
            nudged_chain = false;
            quiet = 0;
            continue;
        }
        if look.follow_up && follow_ups < MAX_FOLLOW_UPS {
            // Settle what this look saw; the back-off stays where it was.
            follow_ups += 1;
            sleep_for = MIN_DELAY;
            continue;
        }
        follow_ups = 0;
        nudged_chain = false;
        delay = (delay * 2).min(max_delay);
        sleep_for = delay;
        if s.npidle() != s.procs() || io_unwatched() || mon.log_pending() {
            // Gs run, or Gs wait for I/O that no M is blocked on: keep
            // watching at the slow pace.
            quiet = 0;
            continue;
        }
        quiet += 1;
        if s.npidle() == s.procs() {
            crate::deadlock::check_dead(true);
        }
        if quiet >= IDLE_ROUNDS {
            // Quiet for a while: if the runtime is idle, give back the pages
            // of pooled stacks beyond the high-water mark (Go's scavenger;
            // off every hot path).
            s.stacks.scavenge();
            // Sleep until the next syscall or busy P. The flag is set before
            // the last look so that either the waker sees it or we see the
            // syscall / the busy P (both sides `SeqCst`).
            // SeqCst: the store of the Dekker pair with `note_busy`: this, then
            // the load of `npidle` below, against `pidle_get`'s decrement, then
            // `note_busy`'s load of `PARKED`.
            PARKED.store(true, Ordering::SeqCst);
            let any = s.ps.iter().any(|p| p.status() == PStatus::Syscall)
                // SeqCst: the load of that pair.
                || s.npidle.load(Ordering::SeqCst) != s.procs()
                || io_unwatched();
            let mut w = WAKE.lock();
            if any {
                // SeqCst: withdraws the flag; the same word as the pair's store
                // above.
                PARKED.store(false, Ordering::SeqCst);
            } else {
                let mut recheck = UNSURE_RECHECK_MIN;
                // SeqCst: a waker clears `PARKED` (swap) and then sets `WAKE`
                // under the lock this loop holds, so the lock orders them;
                // SeqCst as the pair's other accesses.
                while !*w && PARKED.load(Ordering::SeqCst) {
                    if !crate::deadlock::dead_unsure() {
                        w.wait(&WAKE_CV);
                    // SeqCst: as the loop's condition.
                    } else if w.wait_for(&WAKE_CV, recheck) && !*w && PARKED.load(Ordering::SeqCst)
                    {
                        // Every G parked, a thread gort cannot account for
                        // in the way: if it has exited since, this reports
                        // the deadlock.
                        w.unlocked(|| crate::deadlock::check_dead(false));
                        recheck = (recheck * 2).min(UNSURE_RECHECK_MAX);
                    }
                }
            }
            *w = false;
            drop(w);
            quiet = 0;
            delay = MIN_DELAY;
            sleep_for = MIN_DELAY;
        }
    }
}
