//! Runtime configuration: defaults, the `GORT_*` environment, validation.
//!
//! Precedence: a value set on the `runtime::Builder` wins over the
//! environment, which wins over the default. An invalid environment value is
//! reported on stderr (naming the variable and the value) and replaced by the
//! default; an invalid value given to the builder is an error from `build`.

use crate::stack;
use core::fmt;

/// Default limit on Ms (OS threads) the runtime creates, as Go's
/// `SetMaxThreads`.
pub const DEFAULT_MAX_THREADS: usize = 10_000;
/// Upper bound on `procs` (Go caps GOMAXPROCS at 1024 too).
pub const MAX_PROCS: usize = 1024;

/// Where a configuration value came from, for messages that must tell the
/// user which setting to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Source {
    /// Nothing set it.
    #[default]
    Default,
    /// An environment variable, e.g. `GORT_MAX_THREADS`.
    Env(&'static str),
    /// A `runtime::Builder` method, e.g. `max_threads`.
    Builder(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::Env(var) => f.write_str(var),
            Source::Builder(method) => write!(f, "Builder::{method}"),
        }
    }
}

/// Validated configuration of a runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of Ps: Gs running at the same time.
    pub procs: usize,
    /// Usable stack bytes of a G unless its spawn asks for another size.
    pub stack_size: usize,
    /// Most Ms (OS threads) the runtime may create before it stops with
    /// `fatal error: thread exhaustion`.
    pub max_threads: usize,
    /// Most G stacks alive at once; `try_go` fails beyond it.
    pub max_stacks: usize,
    /// Use mprotect guard pages even where `MADV_GUARD_INSTALL` works.
    pub force_mprotect_guards: bool,
    /// Where `procs` came from.
    pub procs_source: Source,
    /// Where `max_threads` came from (the thread-exhaustion message names
    /// it).
    pub max_threads_source: Source,
    /// Log a line on stderr when a G has kept its thread from the runtime
    /// (blocked in the kernel, or running its own code without a runtime
    /// call) for longer than this (`GORT_BLOCKING_LOG`); `None`: never.
    pub blocking_log: Option<core::time::Duration>,
}

/// A configuration value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting, e.g. `GORT_MAXPROCS` or `procs`.
    pub setting: &'static str,
    /// The value as given.
    pub value: String,
    /// What a valid value looks like.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.setting, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Defaults with nothing from the environment.
    pub fn defaults() -> Config {
        Config {
            procs: available_cpus().min(MAX_PROCS),
            stack_size: stack::DEFAULT_STACK_SIZE,
            max_threads: DEFAULT_MAX_THREADS,
            max_stacks: usize::MAX,
            force_mprotect_guards: false,
            procs_source: Source::Default,
            max_threads_source: Source::Default,
            blocking_log: None,
        }
    }

    /// Checks the values against each other: `max_threads` must leave a
    /// thread for every P and one more (an M that blocks while the others
    /// run); below that the runtime would stop with `thread exhaustion` as
    /// soon as every P is busy. The error names where both values came
    /// from.
    pub fn check(&self) -> Result<(), ConfigError> {
        let need = self.procs + 1;
        if self.max_threads < need {
            let setting = match self.max_threads_source {
                Source::Env(var) => var,
                _ => "max_threads",
            };
            return Err(err(
                setting,
                &self.max_threads.to_string(),
                format!(
                    "at least {need}: procs + 1, with procs = {} from {}",
                    self.procs, self.procs_source
                ),
            ));
        }
        Ok(())
    }

    /// Defaults overridden by `GORT_MAXPROCS`, `GORT_STACK_SIZE` and
    /// `GORT_MAX_THREADS`. Invalid values are reported on stderr and ignored;
    /// a `GORT_MAX_THREADS` too small for the procs is reported and replaced
    /// by the default.
    pub fn from_env() -> Config {
        let mut c = Config::from_env_unchecked();
        if let Err(e) = c.check() {
            eprintln!("gort: {e}; using the default {DEFAULT_MAX_THREADS}");
            c.max_threads = DEFAULT_MAX_THREADS.max(c.procs + 1);
            c.max_threads_source = Source::Default;
        }
        c
    }

    /// [`Config::from_env`] without the cross-check of [`Config::check`],
    /// for a builder that overrides some values before checking.
    pub fn from_env_unchecked() -> Config {
        let mut c = Config::defaults();
        let apply = |name: &'static str, set: &mut dyn FnMut(&str) -> Result<(), ConfigError>| {
            if let Some(v) = std::env::var_os(name) {
                let v = v.to_string_lossy();
                if let Err(e) = set(&v) {
                    eprintln!("gort: {e}; using the default");
                }
            }
        };
        apply("GORT_MAXPROCS", &mut |v| {
            c.procs = parse_procs("GORT_MAXPROCS", v)?;
            c.procs_source = Source::Env("GORT_MAXPROCS");
            Ok(())
        });
        apply("GORT_STACK_SIZE", &mut |v| {
            c.stack_size = parse_stack_size("GORT_STACK_SIZE", v)?;
            Ok(())
        });
        apply("GORT_MAX_THREADS", &mut |v| {
            c.max_threads = parse_max_threads("GORT_MAX_THREADS", v)?;
            c.max_threads_source = Source::Env("GORT_MAX_THREADS");
            Ok(())
        });
        apply("GORT_BLOCKING_LOG", &mut |v| {
            c.blocking_log = parse_blocking_log("GORT_BLOCKING_LOG", v)?;
            Ok(())
        });
        c
    }
}

fn err(setting: &'static str, value: &str, expected: String) -> ConfigError {
    ConfigError {
        setting,
        value: value.to_owned(),
        expected,
    }
}

/// `procs`: an integer in `1..=MAX_PROCS`.
pub fn parse_procs(setting: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) => check_procs(setting, n),
        Err(_) => Err(err(setting, v, format!("an integer from 1 to {MAX_PROCS}"))),
    }
}

/// Checks a `procs` value.
pub fn check_procs(setting: &'static str, n: usize) -> Result<usize, ConfigError> {
    if (1..=MAX_PROCS).contains(&n) {
        Ok(n)
    } else {
        Err(err(
            setting,
            &n.to_string(),
            format!("an integer from 1 to {MAX_PROCS}"),
        ))
    }
}

/// A byte size: an integer with an optional `K`, `M` or `G` suffix (powers
/// of 1024, `KiB`/`MiB`/`GiB` also accepted), within the stack size limits.
pub fn parse_stack_size(setting: &'static str, v: &str) -> Result<usize, ConfigError> {
    let expected = || {
        format!(
            "a size from {} to {} bytes, like 65536, 256K or 1M",
            stack::MIN_STACK_SIZE,
            stack::MAX_STACK_SIZE
        )
    };
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(err(setting, v, expected())),
    };
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1usize << shift));
    match n {
        Some(n) => check_stack_size(setting, n).map_err(|_| err(setting, v, expected())),
        None => Err(err(setting, v, expected())),
    }
}

/// Checks a stack size.
pub fn check_stack_size(setting: &'static str, n: usize) -> Result<usize, ConfigError> {
    if (stack::MIN_STACK_SIZE..=stack::MAX_STACK_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(err(
            setting,
            &n.to_string(),
            format!(
                "a size from {} to {} bytes",
                stack::MIN_STACK_SIZE,
                stack::MAX_STACK_SIZE
            ),
        ))
    }
}

/// Shortest threshold of the blocking log: sysmon looks every 10 ms at most
/// while Gs run, so a finer one would only pretend to be precise.
pub const MIN_BLOCKING_LOG: core::time::Duration = core::time::Duration::from_millis(1);

/// `GORT_BLOCKING_LOG`: a duration (`20ms`, `500us`, `1s`, at least 1 ms
/// and at most an hour), or `off`.
pub fn parse_blocking_log(
    setting: &'static str,
    v: &str,
) -> Result<Option<core::time::Duration>, ConfigError> {
    let expected = || "a duration from 1ms to 1h like 10ms, 500ms or 2s, or off".to_string();
    let t = v.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let nanos_per: u64 = match unit.trim() {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        _ => return Err(err(setting, v, expected())),
    };
    let d = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(nanos_per))
        .map(core::time::Duration::from_nanos);
    match d {
        Some(d) if (MIN_BLOCKING_LOG..=core::time::Duration::from_secs(3600)).contains(&d) => {
            Ok(Some(d))
        }
        _ => Err(err(setting, v, expected())),
    }
}

/// `max_threads`: an integer from 2 to 1,000,000 (at least `procs + 1` is
/// checked by [`Config::check`]).
pub fn parse_max_threads(setting: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (2..=1_000_000).contains(&n) => Ok(n),
        _ => Err(err(setting, v, "an integer from 2 to 1000000".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procs_values() {
        assert_eq!(parse_procs("P", "4"), Ok(4));
        assert_eq!(parse_procs("P", " 2 "), Ok(2));
        for bad in ["0", "-1", "two", "", "1025", "99999999999999999999999"] {
            let e = parse_procs("GORT_MAXPROCS", bad).unwrap_err();
            assert!(e.to_string().contains("GORT_MAXPROCS"), "{e}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn stack_size_values() {
        assert_eq!(parse_stack_size("S", "64K"), Ok(64 << 10));
        assert_eq!(parse_stack_size("S", "1m"), Ok(1 << 20));
        assert_eq!(parse_stack_size("S", "1MiB"), Ok(1 << 20));
        assert_eq!(parse_stack_size("S", "65536"), Ok(65536));
        for bad in ["0", "1", "12Q", "K", "", "99999999999999999999G", "-5"] {
            let e = parse_stack_size("GORT_STACK_SIZE", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid GORT_STACK_SIZE="), "{e}");
        }
    }

    #[test]
    fn max_threads_below_procs_names_both_sources() {
        let mut c = Config::defaults();
        c.procs = 8;
        c.procs_source = Source::Builder("procs");
        c.max_threads = 2;
        c.max_threads_source = Source::Builder("max_threads");
        let e = c.check().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid max_threads=\"2\": expected at least 9: procs + 1, with procs = 8 from Builder::procs"
        );
        c.max_threads_source = Source::Env("GORT_MAX_THREADS");
        c.procs_source = Source::Default;
        let e = c.check().unwrap_err().to_string();
        assert!(e.starts_with("invalid GORT_MAX_THREADS=\"2\""), "{e}");
        assert!(e.ends_with("from the default"), "{e}");
        c.max_threads = 9;
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn blocking_log_values() {
        use core::time::Duration;
        let p = |v| parse_blocking_log("GORT_BLOCKING_LOG", v);
        assert_eq!(p("20ms"), Ok(Some(Duration::from_millis(20))));
        assert_eq!(p("1500us"), Ok(Some(Duration::from_micros(1500))));
        assert_eq!(p(" 2s "), Ok(Some(Duration::from_secs(2))));
        assert_eq!(p("off"), Ok(None));
        for bad in [
            "",
            "10",
            "10 parsecs",
            "999us",
            "2h",
            "-1ms",
            "99999999999999999999s",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.to_string().contains("GORT_BLOCKING_LOG"), "{bad}: {e}");
        }
    }

    #[test]
    fn max_threads_values() {
        assert_eq!(parse_max_threads("T", "100"), Ok(100));
        assert!(parse_max_threads("T", "1").is_err());
        assert!(parse_max_threads("T", "x").is_err());
    }
}
