//! Traceback levels: how much a fatal signal prints, and whether it relays
//! and dumps core. `GORT_TRACEBACK`, as Go's `GOTRACEBACK`.
//!
//! | level | prints | then |
//! |---|---|---|
//! | `none` (`0`) | the signal line only | exit 2 |
//! | `single` (`1`, default) | the faulting G | exit 2 |
//! | `all` (`2`) | every user G | exit 2 |
//! | `system` | every G, runtime frames included | exit 2 |
//! | `crash` | every G, then every M's stack (relay) | abort (core dump) |
//!
//! The level is read once at start-up. [`raise`] may raise it later, never
//! below what the environment asked for.

use core::sync::atomic::{AtomicU8, Ordering};

/// How much to print on a fatal signal.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The signal line only.
    None = 0,
    /// The faulting G (default).
    Single = 1,
    /// Every user G.
    All = 2,
    /// Every G, runtime frames included.
    System = 3,
    /// As `System`, then every M dumps its stack and the process aborts.
    Crash = 4,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Single as u8);
static ENV_LEVEL: AtomicU8 = AtomicU8::new(Level::Single as u8);

impl Level {
    /// Parses a `GORT_TRACEBACK` value.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim() {
            "none" | "0" => Level::None,
            "single" | "1" | "" => Level::Single,
            "all" | "2" => Level::All,
            "system" => Level::System,
            "crash" => Level::Crash,
            _ => return None,
        })
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::None,
            2 => Level::All,
            3 => Level::System,
            4 => Level::Crash,
            _ => Level::Single,
        }
    }
}

/// Reads `GORT_TRACEBACK` (start-up). An invalid value is reported and
/// ignored.
pub fn init_from_env() {
    if let Some(v) = std::env::var_os("GORT_TRACEBACK") {
        let v = v.to_string_lossy();
        match Level::parse(&v) {
            Some(l) => {
                ENV_LEVEL.store(l as u8, Ordering::Relaxed);
                LEVEL.store(l as u8, Ordering::Relaxed);
            }
            None => eprintln!(
                "gort: invalid GORT_TRACEBACK={v:?}: expected none, single, all, system, crash (or 0, 1, 2); using single"
            ),
        }
    }
}

/// The current level. Async-signal-safe.
pub fn level() -> Level {
    Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Raises the level to at least `l` (never lowers it below the
/// environment's). Returns the level now in force.
pub fn raise(l: Level) -> Level {
    let floor = ENV_LEVEL.load(Ordering::Relaxed);
    let want = (l as u8).max(floor);
    let prev = LEVEL.fetch_max(want, Ordering::Relaxed);
    Level::from_u8(prev.max(want))
}

/// The level for a SIGQUIT from outside: at least `all` (as Go), without
/// changing the stored level.
pub fn raise_for_quit() -> Level {
    level().max(Level::All)
}

/// Sets the level exactly, but never below the environment's (for an API
/// that lowers what an earlier call raised).
pub fn set(l: Level) -> Level {
    let floor = ENV_LEVEL.load(Ordering::Relaxed);
    let v = (l as u8).max(floor);
    LEVEL.store(v, Ordering::Relaxed);
    Level::from_u8(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_and_gort_spellings() {
        assert_eq!(Level::parse("crash"), Some(Level::Crash));
        assert_eq!(Level::parse("2"), Some(Level::All));
        assert_eq!(Level::parse("0"), Some(Level::None));
        assert_eq!(Level::parse("single"), Some(Level::Single));
        assert_eq!(Level::parse("loud"), None);
    }

    #[test]
    fn raise_never_lowers() {
        assert_eq!(raise(Level::All), Level::All);
        assert_eq!(raise(Level::Single), Level::All);
        assert_eq!(set(Level::None), Level::Single);
    }
}
