//! Channels and `select!`, as Go's `chan` and `select`.
//!
//! ```
//! use runtime::chan;
//! let (tx, rx) = chan::bounded::<u64>(0); // unbuffered: a rendezvous
//! let h = runtime::go(move || (0..10).for_each(|i| tx.send(i).unwrap()));
//! // the G's sender is dropped when it returns: that closes the channel
//! assert_eq!(rx.iter().sum::<u64>(), 45);
//! h.join().unwrap();
//! ```
//!
//! - [`bounded`]`(n)` buffers `n` values; `bounded(0)` is Go's unbuffered
//!   channel (a send completes only when a receiver takes the value).
//!   [`unbounded`] never blocks a sender.
//! - [`Sender`] and [`Receiver`] are both `Clone` (many producers, many
//!   consumers; each value goes to one receiver, in FIFO order per sender)
//!   and `Send + Sync` for `T: Send`.
//! - Blocking operations park a G (its M runs other Gs), block a plain
//!   thread, and work the same from a foreign-thread callback.
//! - Closing (Go's `close`): [`Sender::close`] or dropping the last
//!   `Sender`. Receivers drain what was sent, then get [`RecvError`];
//!   sending on a closed channel returns the value in [`SendError`] (Go
//!   panics). Dropping every `Receiver` makes sends fail the same way.
//! - Timeouts: `send_timeout`/`recv_timeout`, `send_deadline`/
//!   `recv_deadline`, and `timeout`/`deadline` arms of [`select!`](crate::select!); they use
//!   the scheduler's timers (no thread per timer).
//!
//! [`select!`](crate::select!) waits on several operations and runs the
//! first that can proceed, picking at random among those ready (see
//! `scheduler::chan::select` for the protocol and the lock order).
//!
//! Design: `scheduler/src/chan/mod.rs` (the channel lives in the scheduler
//! crate because its waiters' records live on their stacks, which needs
//! unsafe code; this crate has none outside `ffi`).

pub use scheduler::chan::{
    IntoIter, Iter, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryIter, TryRecvError, TrySendError,
};

/// The pieces [`select!`](crate::select!) expands to; usable directly to
/// select over a number of operations known only at run time (crossbeam's
/// `Select`; the guide has the mapping).
///
/// ```
/// use std::time::Duration;
/// use runtime::chan::{self, select::{Mode, RecvArm, Selected, SendArm, select}};
/// let rxs: Vec<_> = (0..5).map(|_| chan::bounded::<usize>(1)).collect();
/// rxs[3].0.send(30).unwrap();
/// let (out_tx, out_rx) = chan::bounded::<&str>(1);
/// // Any number of arms, of different element types.
/// let recvs: Vec<_> = rxs.iter().map(|(_, rx)| RecvArm::new(rx)).collect();
/// let send = SendArm::new(&out_tx, "hello");
/// let mut ops: Vec<_> = recvs.iter().map(RecvArm::op).collect();
/// ops.push(send.op());
/// // Only arm 3 can receive, and the send can proceed: one of the two
/// // is chosen at random and completed.
/// match select(&ops, Mode::timeout(Duration::from_secs(5))) {
///     Selected::Arm(5) => {
///         assert_eq!(send.take(), Some(Ok(())));
///         assert_eq!(out_rx.recv(), Ok("hello"));
///     }
///     Selected::Arm(i) => {
///         assert_eq!((i, recvs[i].take()), (3, Some(Ok(30))));
///         assert!(out_rx.is_empty(), "the send that lost did not happen");
///     }
///     Selected::Timeout | Selected::Default => unreachable!(),
/// }
/// // Arms are single-use: build new ones for the next select.
/// ```
pub mod select {
    #[doc(hidden)]
    pub use scheduler::chan::select::unreachable_outcome;
    pub use scheduler::chan::select::{
        Mode, Op, RecvArm, Selected, SendArm, select, select_biased,
    };
}

/// Makes a channel that buffers `cap` values; `bounded(0)` is unbuffered
/// (a rendezvous).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    crate::ensure_started();
    scheduler::chan::bounded(cap)
}

/// Makes a channel whose sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    crate::ensure_started();
    scheduler::chan::unbounded()
}

/// A receiver that never receives and is never closed (Go's nil channel,
/// crossbeam's `never`): a `recv` arm on it is switched off.
///
/// ```
/// use std::time::Duration;
/// use runtime::{chan, select};
/// let maybe: Option<chan::Receiver<i32>> = None;
/// let rx = maybe.unwrap_or_else(chan::never);
/// let got = select! {
///     recv(rx) -> _ => "value",
///     timeout(Duration::from_millis(1)) => "timeout",
/// };
/// assert_eq!(got, "timeout");
/// ```
pub fn never<T>() -> Receiver<T> {
    crate::ensure_started();
    scheduler::chan::never()
}

/// Waits on several channel operations and runs the arm of the first that
/// can proceed, as Go's `select`.
///
/// ```
/// use std::time::Duration;
/// use runtime::{chan, select, time};
/// let (tx, rx) = chan::bounded::<i32>(1);
/// let (_quit_tx, quit) = chan::bounded::<()>(0);
/// select! {
///     send(tx, 7) -> r => r.unwrap(),
///     recv(quit) -> _ => unreachable!(),
/// }
/// let got = select! {
///     recv(rx) -> v => v.unwrap(),
///     recv(quit) -> _ => -1,
///     timeout(Duration::from_secs(1)) => -2,
/// };
/// assert_eq!(got, 7);
/// let nothing = select! {
///     recv(rx) -> v => v.ok(),
///     default => None,
/// };
/// assert_eq!(nothing, None);
/// // Go's `case <-time.After(d):` — a temporary channel is fine.
/// let late = select! {
///     recv(rx) -> _ => false,
///     recv(time::after(Duration::from_millis(5))) -> _ => true,
/// };
/// assert!(late);
/// ```
///
/// Arms, separated by commas:
///
/// - `recv(rx) -> pat => body`: `pat` (an irrefutable pattern, usually a
///   name) binds `Result<T, RecvError>` (`Err` once `rx` is closed and
///   drained: a closed channel is always ready, as in Go);
/// - `send(tx, value) -> pat => body`: `pat` binds `Result<(), SendError<T>>`.
///   Every `value` is evaluated before the select, as in Go; the values of
///   send arms that are not chosen are dropped;
/// - at most one of `default => body` (run when no arm is ready: the
///   select never blocks), `timeout(duration) => body` (also spelt
///   `default(duration)`, as in crossbeam) or `deadline(instant) => body`.
///
/// `rx` and `tx` may be temporaries (`recv(time::after(d))`): they live
/// until the select ends. A trailing comma inside `recv(…,)`,
/// `send(…, …,)` and after the last arm is accepted.
///
/// When several arms are ready one is chosen at random, so each gets a
/// fair share — also arms naming the same channel, and also when the
/// select had to wait (see [`select_biased!`](crate::select_biased!) for
/// the first-ready-arm order). With none ready the caller parks (a G) or
/// blocks (a thread) on all of them at once until one fires. A select with
/// no arm at all blocks for good, like Go's `select {}`.
#[macro_export]
macro_rules! select {
    ($($t:tt)*) => {
        $crate::__select!(@ ($crate::chan::select::select) [] [] ($crate::chan::select::Mode::Block) ($crate::chan::select::unreachable_outcome()) $($t)*)
    };
}

/// As [`select!`](crate::select!), but when several arms are ready the
/// first of them in the order written wins (crossbeam's
/// `select_biased!`): for priorities, such as draining a control channel
/// before taking more work. An arm that is always ready starves the arms
/// after it.
///
/// ```
/// use runtime::{chan, select_biased};
/// let (hi_tx, hi) = chan::bounded::<&str>(4);
/// let (lo_tx, lo) = chan::bounded::<&str>(4);
/// lo_tx.send("low").unwrap();
/// hi_tx.send("high").unwrap();
/// let first = select_biased! {
///     recv(hi) -> v => v.unwrap(),
///     recv(lo) -> v => v.unwrap(),
/// };
/// assert_eq!(first, "high");
/// ```
#[macro_export]
macro_rules! select_biased {
    ($($t:tt)*) => {
        $crate::__select!(@ ($crate::chan::select::select_biased) [] [] ($crate::chan::select::Mode::Block) ($crate::chan::select::unreachable_outcome()) $($t)*)
    };
}

/// Implementation of [`select!`]: a tt-muncher collecting arms.
///
/// Each arm becomes two `let`s: `&channel`, whose temporary (if the
/// channel expression is one) lives to the end of the select's block by
/// temporary lifetime extension, and the arm borrowing it.
#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    // All arms read: run the select, then the chosen arm's body.
    (@ ($f:path) [$($arm:ident $p:pat => $body:expr;)*] [$($decl:tt)*] ($mode:expr) ($final:expr)) => {{
        $($decl)*
        let _ = $f(&[$($arm.op()),*], $mode);
        $( if let ::core::option::Option::Some(__select_result) = $arm.take() {
            let $p = __select_result;
            $body
        } else )* {
            $final
        }
    }};
    // Arm heads.
    (@ $f:tt $arms:tt [$($decl:tt)*] $mode:tt $final:tt recv($rx:expr $(,)?) -> $p:pat => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms [$($decl)*
            let __select_chan = &$rx;
            let __select_arm = $crate::chan::select::RecvArm::new(__select_chan);
        ] $mode $final (arm __select_arm $p) $($rest)*)
    };
    (@ $f:tt $arms:tt [$($decl:tt)*] $mode:tt $final:tt send($tx:expr, $v:expr $(,)?) -> $p:pat => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms [$($decl)*
            let __select_chan = &$tx;
            let __select_arm = $crate::chan::select::SendArm::new(__select_chan, $v);
        ] $mode $final (arm __select_arm $p) $($rest)*)
    };
    (@ $f:tt $arms:tt $decl:tt $mode:tt $final:tt default => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms $decl ($crate::chan::select::Mode::NonBlocking) $final (final) $($rest)*)
    };
    (@ $f:tt $arms:tt $decl:tt $mode:tt $final:tt default($d:expr $(,)?) => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms $decl ($crate::chan::select::Mode::timeout($d)) $final (final) $($rest)*)
    };
    (@ $f:tt $arms:tt $decl:tt $mode:tt $final:tt timeout($d:expr $(,)?) => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms $decl ($crate::chan::select::Mode::timeout($d)) $final (final) $($rest)*)
    };
    (@ $f:tt $arms:tt $decl:tt $mode:tt $final:tt deadline($i:expr $(,)?) => $($rest:tt)*) => {
        $crate::__select!(@body $f $arms $decl ($crate::chan::select::Mode::Deadline($i)) $final (final) $($rest)*)
    };
    // Arm bodies: a block (comma optional) or an expression (comma unless
    // last).
    (@body $f:tt [$($arms:tt)*] $decl:tt $mode:tt $final:tt (arm $arm:ident $p:pat) $body:block , $($rest:tt)*) => {
        $crate::__select!(@ $f [$($arms)* $arm $p => $body;] $decl $mode $final $($rest)*)
    };
    (@body $f:tt [$($arms:tt)*] $decl:tt $mode:tt $final:tt (arm $arm:ident $p:pat) $body:block $($rest:tt)*) => {
        $crate::__select!(@ $f [$($arms)* $arm $p => $body;] $decl $mode $final $($rest)*)
    };
    (@body $f:tt [$($arms:tt)*] $decl:tt $mode:tt $final:tt (arm $arm:ident $p:pat) $body:expr , $($rest:tt)*) => {
        $crate::__select!(@ $f [$($arms)* $arm $p => $body;] $decl $mode $final $($rest)*)
    };
    (@body $f:tt [$($arms:tt)*] $decl:tt $mode:tt $final:tt (arm $arm:ident $p:pat) $body:expr) => {
        $crate::__select!(@ $f [$($arms)* $arm $p => $body;] $decl $mode $final)
    };
    (@body $f:tt $arms:tt $decl:tt $mode:tt $final:tt (final) $body:block , $($rest:tt)*) => {
        $crate::__select!(@ $f $arms $decl $mode ($body) $($rest)*)
    };
    (@body $f:tt $arms:tt $decl:tt $mode:tt $final:tt (final) $body:block $($rest:tt)*) => {
        $crate::__select!(@ $f $arms $decl $mode ($body) $($rest)*)
    };
    (@body $f:tt $arms:tt $decl:tt $mode:tt $final:tt (final) $body:expr , $($rest:tt)*) => {
        $crate::__select!(@ $f $arms $decl $mode ($body) $($rest)*)
    };
    (@body $f:tt $arms:tt $decl:tt $mode:tt $final:tt (final) $body:expr) => {
        $crate::__select!(@ $f $arms $decl $mode ($body))
    };
}
