//! `g_local!`: declares G-local keys (the storage is
//! `scheduler::glocal`).

/// Declares G-local keys, shaped like `std::thread_local!`: each G gets its
/// own value, made by the initialiser on the G's first access, kept across
/// parks whichever OS thread the G resumes on, and dropped when the G ends.
/// Outside the runtime (a plain thread) each thread gets its own value.
/// Values must be `Send` (a G moves between threads).
///
/// ```
/// use std::cell::Cell;
/// runtime::g_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
/// let h = runtime::go(|| {
///     REQUESTS.with(|n| n.set(n.get() + 1));
///     runtime::sleep(std::time::Duration::from_millis(1)); // may move to another M
///     REQUESTS.with(Cell::get)
/// });
/// assert_eq!(h.join().unwrap(), 1);
/// ```
#[macro_export]
macro_rules! g_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::GLocal<$t> = $crate::GLocal::new(|| $init);
        $crate::g_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])* $vis static $name: $crate::GLocal<$t> = $crate::GLocal::new(|| $init);
    };
}
