//! `sysmon`: the monitor thread that retakes Ps from Ms stuck in syscalls
//! or stuck in a G's own code, and polls the network when nobody else does.
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
//! - A P lent to the same stretch of a G's user code (`PStatus::Lent` with
//!   an unchanged sequence number, see `preempt.rs`) for a whole slice
//!   (10 ms) is retaken when work waits for it (its queue, the global
//!   queue, a due timer): the G called `std::thread::sleep`, blocking std
//!   I/O, or loops without a runtime call. The M keeps running that G
//!   without a P, like an M in a syscall, and takes a P back at the G's next
//!   runtime call; its `preempt` flag makes `preempt_point` yield.
//! - When Gs wait for I/O, no M is blocked in netpoll and nobody polled for
//!   10 ms (every P busy), it polls and queues the ready Gs globally.
//!
//! Before it sleeps deeply on an idle runtime it also scavenges pooled G
//! stacks (gives their pages back above the high-water mark).

use crate::p::PStatus;
use crate::preempt::SLICE_NS;
use crate::sched::sched;
use crate::timer::nanotime;
use core::sync::atomic::{AtomicBool, Ordering};
use parking_lot::{Condvar, Mutex};
use std::time::Duration;

/// A syscall longer than this may lose its P when other work waits.
const RETAKE_AFTER_NS: u64 = 20_000;
/// A syscall longer than this loses its P regardless.
const FORCE_RETAKE_NS: u64 = 10_000_000;
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
/// sysmon polls the network when nobody did for this long.
const POLL_STALE_NS: u64 = 10_000_000;
/// Rounds without any syscall before sysmon sleeps until the next one.
const IDLE_ROUNDS: u32 = 50;

/// While the last deadlock check was unsure (`schedule::dead_unsure`),
/// sysmon asleep on an idle runtime looks again after this, doubling up to
/// [`UNSURE_RECHECK_MAX`].
const UNSURE_RECHECK_MIN: Duration = Duration::from_millis(500);
const UNSURE_RECHECK_MAX: Duration = Duration::from_secs(8);

/// Whether sysmon sleeps until the next syscall.
static PARKED: AtomicBool = AtomicBool::new(false);
static WAKE: Mutex<bool> = Mutex::new(false);
static WAKE_CV: Condvar = Condvar::new();

/// Called on every syscall entry: wakes sysmon if it sleeps deeply. One
/// relaxed load on the fast path.
#[inline]
pub(crate) fn note_syscall() {
    if PARKED.load(Ordering::Relaxed) {
        wake();
    }
}

/// Called when a P leaves the idle list (after `npidle` was decremented,
/// `SeqCst`): wakes sysmon if it sleeps deeply, so a G that then blocks its
/// M without a runtime call is noticed. Pairs with the `SeqCst` store of
/// `PARKED` and re-check of `npidle` before sysmon sleeps.
#[inline]
pub(crate) fn note_busy() {
    if PARKED.load(Ordering::SeqCst) {
        wake();
    }
}

#[cold]
fn wake() {
    if PARKED.swap(false, Ordering::AcqRel) {
        *WAKE.lock() = true;
        WAKE_CV.notify_one();
    }
}

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

fn run() {
    let s = sched();
    // Per P: the state word seen last and when it was first seen.
    let mut seen: Vec<(u64, u64)> = vec![(0, 0); s.procs()];
    let mut delay = MIN_DELAY;
    let mut quiet = 0u32;
    let mut woken = Vec::new();
    // Netpoll count at sysmon's last look, when that was, and its verdict.
    let (mut polls_seen, mut last_poll_look, mut stale) = (0u64, 0u64, false);
    loop {
        std::thread::sleep(delay);
        crate::schedule::refresh_coarse_now();
        let now = nanotime();
        let mut in_syscall = false;
        let mut retook = false;
        for (p, seen) in s.ps.iter().zip(seen.iter_mut()) {
            let word = p.state_word();
            let status = word & 0xff;
            if status != PStatus::Syscall as u64 && status != PStatus::Lent as u64 {
                continue;
            }
            let lent = status == PStatus::Lent as u64;
            in_syscall |= !lent;
            if seen.0 != word {
                *seen = (word, now);
                continue;
            }
            let long = now.saturating_sub(seen.1);
            if long < if lent { SLICE_NS } else { RETAKE_AFTER_NS } {
                continue;
            }
            let work_waits = !p.runq_is_empty() || !s.global.is_empty();
            let retake = if lent {
                work_waits || p.timers.next_when() <= now
            } else {
                let nobody_free = s.nmspinning() + s.npidle() == 0;
                work_waits || nobody_free || long >= FORCE_RETAKE_NS
            };
            if !retake {
                continue;
            }
            // Read before the compare-and-swap: while the word is unchanged
            // the P stays with this M (the sequence number changes at every
            // lend and syscall), so the CAS confirms it.
            let m = p.m.load(Ordering::Relaxed);
            // SAFETY: p.m holds null or a 'static M.
            let claim = unsafe { m.as_ref() }.map(|m| &m.claim);
            if p.retake(word, claim) {
                retook = true;
                if lent {
                    // SAFETY: p.m holds null or a 'static M.
                    if let Some(m) = unsafe { m.as_ref() } {
                        m.preempt.store(true, Ordering::Relaxed);
                    }
                }
                crate::schedule::hand_off_p(p);
            }
        }
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
                crate::sched::wakep_if_idle();
            }
        }
        if in_syscall || retook {
            delay = MIN_DELAY;
            quiet = 0;
            continue;
        }
        delay = (delay * 2).min(MAX_DELAY);
        if s.npidle() != s.procs() || io_unwatched() {
            // Gs run, or Gs wait for I/O that no M is blocked on: keep
            // watching at the slow pace.
            quiet = 0;
            continue;
        }
        quiet += 1;
        if s.npidle() == s.procs() {
            crate::schedule::check_dead(true);
        }
        if quiet >= IDLE_ROUNDS {
            // Quiet for a while: if the runtime is idle, give back the pages
            // of pooled stacks beyond the high-water mark (Go's scavenger;
            // off every hot path).
            s.stacks.scavenge();
            // Sleep until the next syscall or busy P. The flag is set before
            // the last look so that either the waker sees it or we see the
            // syscall / the busy P (both sides `SeqCst`).
            PARKED.store(true, Ordering::SeqCst);
            let any = s.ps.iter().any(|p| p.status() == PStatus::Syscall)
                || s.npidle.load(Ordering::SeqCst) != s.procs()
                || io_unwatched();
            let mut w = WAKE.lock();
            if any {
                PARKED.store(false, Ordering::SeqCst);
            } else {
                let mut recheck = UNSURE_RECHECK_MIN;
                while !*w && PARKED.load(Ordering::SeqCst) {
                    if !crate::schedule::dead_unsure() {
                        WAKE_CV.wait(&mut w);
                    } else if WAKE_CV.wait_for(&mut w, recheck).timed_out()
                        && !*w
                        && PARKED.load(Ordering::SeqCst)
                    {
                        // Every G parked, a thread gort cannot account for
                        // in the way: if it has exited since, this reports
                        // the deadlock.
                        parking_lot::MutexGuard::unlocked(&mut w, || {
                            crate::schedule::check_dead(false)
                        });
                        recheck = (recheck * 2).min(UNSURE_RECHECK_MAX);
                    }
                }
            }
            *w = false;
            drop(w);
            quiet = 0;
            delay = MIN_DELAY;
        }
    }
}
