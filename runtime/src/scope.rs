//! Scoped Gs: [`scope`], with the shape of `std::thread::scope`.
//!
//! Gs started through a [`Scope`] may borrow from the caller's stack: the
//! scope does not return before every one of them finished and everything
//! they left (their result, their closure) was dropped. A panic in the
//! scope's function, or in a scoped G nobody joined, reaches the caller.
//!
//! The one `unsafe` step is the lifetime erasure in [`Scope::go`]: the
//! scheduler stores a G's entry as `'static`. It is sound because of the
//! count: each scoped G's packet counts once in the scope's `WaitGroup`
//! from before the G starts until the packet is dropped, which happens
//! only after the closure ran (or was dropped unrun) and its result was
//! taken or dropped; [`scope`] waits for the count to reach zero before it
//! returns, on every path (also when its function panicked).
#![allow(unsafe_code)]

use crate::JoinHandle;
use crate::sync::WaitGroup;
use scheduler::lock_rank::{Rank, RankedMutex};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What every packet of a scope shares.
#[derive(Debug, Default)]
struct ScopeData {
    /// Live packets.
    running: WaitGroup,
    /// A scoped G panicked and nobody joined it to see the panic.
    unhandled_panic: AtomicBool,
}

/// A scope to start Gs in, handed to the function given to [`scope`].
#[derive(Debug)]
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    /// Invariant over 'scope and 'env, as std's.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// The result slot of one scoped G, shared by the G and its handle.
struct Packet<T> {
    result: RankedMutex<Option<std::thread::Result<T>>>,
    scope: Arc<ScopeData>,
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        let result = self.result.get_mut();
        let unhandled = matches!(result, Some(Err(_)));
        // The result may borrow from the scope: dropped before the count
        // goes down. A panic while dropping it counts as the G's.
        let dropped = catch_unwind(AssertUnwindSafe(|| drop(result.take())));
        if unhandled || dropped.is_err() {
            self.scope.unhandled_panic.store(true, Ordering::Relaxed);
        }
        self.scope.running.done();
    }
}

/// Owned permission to join a scoped G.
#[derive(Debug)]
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<()>,
    packet: Arc<Packet<T>>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> std::fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet").finish_non_exhaustive()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the G and returns its value, or `Err(payload)` if it
    /// panicked (the scope then does not panic for it).
    pub fn join(self) -> std::thread::Result<T> {
        // The G's entry never panics (the packet catches), so this is Ok.
        let _ = self.inner.join();
        let taken = self.packet.result.lock().take();
        taken.unwrap_or_else(|| unreachable!("ScopedJoinHandle::join: the G left no result"))
    }

    /// Id of the G.
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// Whether the G has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a G that may borrow anything that outlives the scope. It is
    /// joined before [`scope`] returns at the latest.
    ///
    /// # Panics
    ///
    /// If the G cannot be created (as [`crate::go`]).
    #[track_caller]
    pub fn go<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet {
            result: RankedMutex::new(Rank::ScopeResult, None),
            scope: self.data.clone(),
        });
        self.data.running.add(1);
        let theirs = packet.clone();
        let main = move || {
            let out = catch_unwind(AssertUnwindSafe(f));
            *theirs.result.lock() = Some(out);
            drop(theirs);
        };
        let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(main);
        // SAFETY: see the module docs: `scope` does not return before this
        // closure and everything it owns (the packet clone, the result)
        // were dropped, so nothing borrowed for 'scope is used after it
        // ends. Only the lifetime changes; the type is the same.
        let main: Box<dyn FnOnce() + Send + 'static> = unsafe { core::mem::transmute(main) };
        let inner = match crate::try_go(main) {
            Ok(h) => h,
            Err(e) => panic!("runtime::Scope::go: {e}"),
        };
        ScopedJoinHandle {
            inner,
            packet,
            _scope: PhantomData,
        }
    }
}

/// Runs `f` with a [`Scope`] in which it can start Gs that borrow from the
/// caller, and returns `f`'s value once every such G finished.
///
/// ```
/// let mut counts = [0u32; 4];
/// let text = "gort runs plain blocking rust";
/// runtime::scope(|s| {
///     for (i, c) in counts.iter_mut().enumerate() {
///         s.go(move || *c = text.split(' ').nth(i).unwrap().len() as u32);
///     }
/// });
/// assert_eq!(counts, [4, 4, 5, 8]);
/// ```
///
/// # Panics
///
/// With `f`'s own panic payload if `f` panicked (after every G finished),
/// else with "a scoped G panicked" if a G that was not joined panicked.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData::default()),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.data.running.wait();
    match result {
        Err(e) => resume_unwind(e),
        Ok(_) if scope.data.unhandled_panic.load(Ordering::Relaxed) => {
            panic!("a scoped G panicked")
        }
        Ok(v) => v,
    }
}
