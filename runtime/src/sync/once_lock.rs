//! `OnceLock<T>` and `LazyLock<T>`: std's, with an initialisation that
//! parks the Gs waiting for it.
//!
//! The value sits in a `std::sync::OnceLock`, which is read lock-free (one
//! acquire load when set). Every write to it happens with our own
//! [`Mutex`] held, so std's lock never has a second party to block: the
//! waiting is ours, and a G waiting for another's initialiser parks
//! (`sync.Mutex.Lock` in a dump) while its M runs other Gs. With std's
//! types a G waiting for an initialiser blocks its M.
//!
//! An initialiser that panics leaves the cell empty (as std's `OnceLock`),
//! and the mutex is not poisoned: the next caller runs its own
//! initialiser. A `LazyLock` has only one function, so after a panic in it
//! every later access panics (as std's, which calls that "poisoned").
//! Initialising a cell again from inside its own initialiser waits for
//! good, as a mutex locked twice (std's may panic or deadlock there).

use crate::sync::Mutex;

/// A cell written once, read lock-free after that; callers of
/// [`get_or_init`](OnceLock::get_or_init) that find another's initialiser
/// running park until it is done.
///
/// ```
/// use runtime::sync::OnceLock;
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// let hs: Vec<_> = (0..8)
///     .map(|i| runtime::go(move || CONFIG.get_or_init(|| format!("from {i}")).len()))
///     .collect();
/// let lens: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
/// assert!(lens.iter().all(|&l| l == lens[0]));
/// ```
pub struct OnceLock<T> {
    value: std::sync::OnceLock<T>,
    /// Held by whoever writes `value`.
    init: Mutex<()>,
}

// As std's: a panicking initialiser leaves the cell empty, never half
// written.
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for OnceLock<T> {}
impl<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe
    for OnceLock<T>
{
}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            value: std::sync::OnceLock::new(),
            init: Mutex::new(()),
        }
    }

    /// The value, if set. Never waits.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, through exclusive access.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Sets the value if the cell is empty; otherwise gives `value` back.
    /// Waits (parks) while another caller's initialiser runs.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("OnceLock::set: value taken twice"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, running `f` to make it if the cell is empty. Exactly one
    /// caller's `f` runs; the others park until it returns and then get its
    /// value. If `f` panics the cell stays empty and the panic goes on in
    /// that caller; the next caller runs its own `f`.
    #[inline]
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        match self.value.get() {
            Some(v) => v,
            None => self.init_slow(f),
        }
    }

    #[cold]
    fn init_slow(&self, f: impl FnOnce() -> T) -> &T {
        let _g = self.init.lock();
        // Nobody else writes while we hold `init`: std's lock is free.
        self.value.get_or_init(f)
    }

    /// The value, consuming the cell.
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        OnceLock::new()
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> Self {
        OnceLock {
            value: std::sync::OnceLock::from(value),
            init: Mutex::new(()),
        }
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> Self {
        match self.get() {
            Some(v) => OnceLock::from(v.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

/// A value made on first use by `F`; Gs that arrive while another runs
/// `F` park until it is done.
///
/// ```
/// use std::collections::HashMap;
/// use runtime::sync::LazyLock;
/// static TABLE: LazyLock<HashMap<u32, &str>> =
///     LazyLock::new(|| HashMap::from([(1, "one"), (2, "two")]));
/// let h = runtime::go(|| TABLE[&2]);
/// assert_eq!(h.join().unwrap(), "two");
/// assert_eq!(TABLE.len(), 2);
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    /// Taken by the one caller that initialises.
    init: Mutex<Option<F>>,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A value that `f` will make on first use.
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock {
            cell: OnceLock::new(),
            init: Mutex::new(Some(f)),
        }
    }

    /// The value, made now if this is the first use.
    ///
    /// # Panics
    ///
    /// If the function panicked on an earlier use (the panic of that use
    /// went to its caller; the function is gone).
    #[inline]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.cell.get_or_init(|| match this.init.lock().take() {
            Some(f) => f(),
            None => panic!("LazyLock: the initialiser panicked on an earlier use"),
        })
    }

    /// The value, consuming the lock: `Ok` if it was made, else the
    /// function in `Err`.
    pub fn into_inner(this: LazyLock<T, F>) -> Result<T, F> {
        match this.cell.into_inner() {
            Some(v) => Ok(v),
            None => match this.init.into_inner() {
                Some(f) => Err(f),
                None => panic!("LazyLock: the initialiser panicked on an earlier use"),
            },
        }
    }
}

impl<T, F: FnOnce() -> T> core::ops::Deref for LazyLock<T, F> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    fn default() -> Self {
        LazyLock::new(T::default)
    }
}

impl<T: core::fmt::Debug, F> core::fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.cell.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
