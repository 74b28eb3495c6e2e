//! `sysmon`: the monitor thread that retakes Ps from Ms stuck in syscalls.
//!
//! It is a plain thread, not an M: it holds no P and runs no G. It wakes
//! every 20 µs while some M is in a syscall, backing off to 10 ms otherwise,
//! and sleeps until the next syscall when there is none to watch, so an idle
//! runtime costs nothing. A P whose M has been in the same syscall for a
//! whole period is retaken when other work waits (its local queue or the
//! global queue is not empty, or no M is idle or spinning to pick work up)
//! or after 10 ms regardless, and handed to another M (Go's `retake`).
//! Before it sleeps deeply on an idle runtime it also scavenges pooled G
//! stacks (gives their pages back above the high-water mark).

use crate::p::PStatus;
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
/// Rounds without any syscall before sysmon sleeps until the next one.
const IDLE_ROUNDS: u32 = 50;

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

fn run() {
    let s = sched();
    // Per P: the state word seen last and when it was first seen.
    let mut seen: Vec<(u64, u64)> = vec![(0, 0); s.procs()];
    let mut delay = MIN_DELAY;
    let mut quiet = 0u32;
    loop {
        std::thread::sleep(delay);
        let now = nanotime();
        let mut in_syscall = false;
        let mut retook = false;
        for (p, seen) in s.ps.iter().zip(seen.iter_mut()) {
            let word = p.state_word();
            if p.status() != PStatus::Syscall || (word & 0xff) != PStatus::Syscall as u64 {
                continue;
            }
            in_syscall = true;
            if seen.0 != word {
                *seen = (word, now);
                continue;
            }
            let long = now.saturating_sub(seen.1);
            if long < RETAKE_AFTER_NS {
                continue;
            }
            let work_waits = !p.runq_is_empty() || !s.global.is_empty();
            let nobody_free = s.nmspinning() + s.npidle() == 0;
            if (work_waits || nobody_free || long >= FORCE_RETAKE_NS) && p.retake(word) {
                retook = true;
                crate::schedule::hand_off_p(p);
            }
        }
        if in_syscall || retook {
            delay = MIN_DELAY;
            quiet = 0;
            continue;
        }
        delay = (delay * 2).min(MAX_DELAY);
        quiet += 1;
        if s.npidle() == s.procs() {
            crate::schedule::check_dead();
        }
        if quiet >= IDLE_ROUNDS {
            // Quiet for a while: if the runtime is idle, give back the pages
            // of pooled stacks beyond the high-water mark (Go's scavenger;
            // off every hot path).
            if s.npidle() == s.procs() {
                s.stacks.scavenge();
            }
            // Sleep until the next syscall. The flag is set before the last
            // look so that a syscall entering after it wakes us.
            PARKED.store(true, Ordering::SeqCst);
            let any = s.ps.iter().any(|p| p.status() == PStatus::Syscall);
            let mut w = WAKE.lock();
            if any {
                PARKED.store(false, Ordering::SeqCst);
            } else {
                while !*w && PARKED.load(Ordering::SeqCst) {
                    WAKE_CV.wait(&mut w);
                }
            }
            *w = false;
            drop(w);
            quiet = 0;
            delay = MIN_DELAY;
        }
    }
}
