//! Per-architecture code for gort.
//!
//! **Internal to gort, not a stable API**: public for gort's other crates,
//! changed in any release. Use the `gort` crate (imported as `runtime`).
//!
//! Everything that depends on the instruction set lives here, one topic per
//! module and one file per architecture inside it:
//!
//! - [`context`]: the context switch between a G and another G (or an M's
//!   `g0`), the first frame of a new G, and the entry trampoline that ends a
//!   G's frame chain. Every parked G's saved context exposes the `pc`, `sp`
//!   and `fp` (and `lr` on aarch64) a traceback starts from.
//! - [`sigctx`]: typed access to the context the kernel hands a signal
//!   handler (`pc`, `sp`, `fp`, `lr`, the fault address, a register dump in
//!   Go's order) and `signal_entry`, the function installed as
//!   `sa_sigaction` (on i686 an assembly trampoline that realigns the stack
//!   qemu-i386 misaligns). Everything in it is async-signal-safe. Layout
//!   facts per architecture: `docs/cross-arch.md`.
//! - [`unwind`]: the per-architecture steps of the crash walker
//!   (`signals::unwind`): where a call leaves its return address, prologue
//!   and signal-frame steps with their `ucontext_t` offsets, the
//!   pointer-authentication mask, and (feature `cfi`) which `framehop`
//!   unwinder reads the architecture's CFI. Async-signal-safe.
//! - [`trap`]: an instruction that traps on purpose (`SIGILL`), for the
//!   crash-tracing tests.
//!
//! Supported: `x86_64` (the fully commented reference), `aarch64` and `x86`
//! (i686). Each `mod.rs` states the contract every architecture provides and
//! ends its `cfg_if!` in `compile_error!`, so a port fails loudly.
//!
//! Nothing here knows about Gs, Ms or Ps: the scheduler crate gives meaning to
//! the stacks and entry points. See `docs/design.md` and `docs/porting.md`.
#![no_std]

pub mod context;
pub mod sigctx;
pub mod trap;
pub mod unwind;
