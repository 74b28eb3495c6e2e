//! Asymmetric memory barriers: a free one for hot paths, a costly one for
//! the rare side of the same protocol.
//!
//! Several scheduler protocols are Dekker-shaped: one side stores X then
//! loads Y, the other stores Y then loads X, and at least one of them must
//! see the other's store. That needs a full (StoreLoad) barrier on both
//! sides — on x86_64 a locked instruction, ~9 ns on these machines, paid at
//! every `ready`, every runtime call of a G, every `runnext` hand-off.
//!
//! But each of these protocols has a hot side and a rare side:
//!
//! | protocol | hot side (`light`) | rare side (`heavy`) |
//! |---|---|---|
//! | no lost wake-up | a producer readies a G, then looks for idle Ps | the last spinning M stops, then re-checks every queue |
//! | lent P (`engine/lend.rs`) | a G's M claims its P back at a runtime call | `sysmon` retakes a P after a 10 ms slice |
//! | `runnext` (`runq.rs`) | the owner puts or takes its next G | a thief takes another P's `runnext` |
//!
//! Linux's `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` runs a full
//! barrier on every CPU that is running a thread of this process, before it
//! returns. So the hot side needs only a compiler barrier: the interrupt
//! lands on the hot thread either before its store to X (then its load of Y
//! comes later and sees the rare side's Y, which was visible before the
//! interrupt) or after it (then X is visible once `membarrier` returns, and
//! the rare side's later load sees it). A thread that is not running went
//! through the kernel's context switch, a full barrier itself. Measured
//! here: ~180 ns per call, ~380 ns with a busy thread on the other CPU.
//!
//! Where `membarrier` is missing (old kernels, seccomp filters, emulators),
//! `init` chooses plain `SeqCst` fences on both sides, the symmetric
//! version of the same protocols. The choice is made once, before the first
//! M starts, and never changes: a hot side that used a compiler barrier must
//! always meet a rare side that uses `membarrier`.
//!
//! Under loom (`loom.rs`, the model-checked tests) both sides are
//! `fence(SeqCst)`, the fence version: what `membarrier` guarantees is that
//! the hot side behaves as if it had run that fence at `light`.
//!
//! Rejected: `mprotect`-based "flush process write buffers" tricks (what
//! some VMs did before `membarrier`: an IPI by way of a TLB shootdown, but
//! undocumented as a barrier on arm64).

use crate::loom::atomic::fence;
use core::sync::atomic::{AtomicU8, Ordering, compiler_fence};

/// [`MODE`] values.
const UNSET: u8 = 0;
const MEMBARRIER: u8 = 1;
const FENCES: u8 = 2;

/// How the barriers are made; set once by `init`.
static MODE: AtomicU8 = AtomicU8::new(UNSET);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes (cmd, flags, cpu_id) by value and touches no
    // memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        )
    }
}

/// Chooses the barrier kind. Called when the scheduler is made, before any
/// M runs; later calls keep the first choice. `GORT_MEMBARRIER=0` forces
/// the fences (for testing that path; any other value is reported and
/// ignored).
pub(crate) fn init() {
    if MODE.load(Ordering::Acquire) != UNSET {
        return;
    }
    let wanted = match std::env::var("GORT_MEMBARRIER") {
        Ok(v) if v == "0" => false,
        Ok(v) if v == "1" => true,
        Ok(v) => {
            crate::fatal::write_stderr(&[
                b"runtime: GORT_MEMBARRIER=",
                v.as_bytes(),
                b" is not 0 or 1; using the default (1)\n",
            ]);
            true
        }
        Err(_) => true,
    };
    let mode = if wanted && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 {
        MEMBARRIER
    } else {
        FENCES
    };
    let _ = MODE.compare_exchange(UNSET, mode, Ordering::AcqRel, Ordering::Acquire);
}

/// Whether the rare side uses `membarrier` (for `stats`, tests and docs).
pub fn uses_membarrier() -> bool {
    MODE.load(Ordering::Relaxed) == MEMBARRIER
}

/// The hot side's StoreLoad barrier: a compiler barrier when the rare side
/// uses `membarrier`, else a full fence.
#[inline(always)]
pub(crate) fn light() {
    if MODE.load(Ordering::Relaxed) == MEMBARRIER {
        // SeqCst: the hot side's half of a StoreLoad pair: the compiler keeps
        // the store before and the load after in program order, and the rare
        // side's `membarrier` supplies the hardware barrier.
        compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: without `membarrier`, the hot side's StoreLoad fence, paired
        // with `heavy`'s.
        fence(Ordering::SeqCst);
    }
}

/// The rare side's StoreLoad barrier: every thread of the process that ran
/// `light` before this call is ordered as if it had run a full fence there.
#[inline(never)]
pub(crate) fn heavy() {
    if MODE.load(Ordering::Relaxed) != MEMBARRIER {
        // SeqCst: without `membarrier`, the rare side's StoreLoad fence, paired
        // with `light`'s.
        fence(Ordering::SeqCst);
    } else if membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 {
        // Registered at init, so this cannot fail short of a kernel bug; a
        // hot side may have used a compiler barrier only, so going on would
        // risk a lost wake-up. (The call is a full barrier for this thread
        // too.)
        crate::throw!("barrier::heavy: membarrier failed after registration");
    }
}
