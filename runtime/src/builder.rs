//! Runtime configuration before start.

use scheduler::config::{self, Config, ConfigError, Source};
use std::fmt;

/// Configures the runtime before its first use. Values left unset come from
/// the environment (`GORT_MAXPROCS`, `GORT_STACK_SIZE`, `GORT_MAX_THREADS`,
/// `GORT_BLOCKING_LOG`), then from the defaults.
///
/// ```
/// runtime::Builder::new().procs(2).stack_size(128 * 1024).build().ok();
/// assert_eq!(runtime::go(|| 7).join().unwrap(), 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    procs: Option<usize>,
    stack_size: Option<usize>,
    max_threads: Option<usize>,
    max_stacks: Option<usize>,
    force_mprotect_guards: bool,
    panic_aborts: bool,
    blocking_log: Option<Option<std::time::Duration>>,
}

/// Why [`Builder::build`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A value is out of range.
    Config(ConfigError),
    /// The runtime already runs (started by an earlier `build` or by the
    /// first `go`); its configuration cannot change.
    AlreadyStarted {
        /// Ps of the running runtime.
        procs: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => e.fmt(f),
            BuildError::AlreadyStarted { procs } => {
                write!(
                    f,
                    "the runtime has already started (procs = {procs}); configure it before the first go()"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {}

impl From<ConfigError> for BuildError {
    fn from(e: ConfigError) -> Self {
        BuildError::Config(e)
    }
}

impl Builder {
    /// A builder with nothing set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Number of Ps: how many Gs run at the same time (1 to 1024; default:
    /// the CPUs available).
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Default usable stack size of a G, in bytes (16 KiB to 1 GiB; default
    /// 256 KiB on 64-bit targets, 64 KiB on 32-bit). Untouched stack pages
    /// cost no memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Most OS threads (Ms) the runtime may create (default 10,000; at least
    /// `procs + 1`, checked by [`Builder::build`]). Threads of C libraries
    /// that call in keep an M of their own but are not counted: the limit is
    /// for threads gort creates, as Go's. When a G blocks its thread and
    /// handing its P to another thread would go beyond it, the P waits for
    /// the blocked thread instead (a stall, counted in [`crate::stats`]);
    /// only when no G can ever run again (every thread holds a locked G)
    /// does the process stop with `fatal error: thread exhaustion`, as Go.
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.max_threads = Some(n);
        self
    }

    /// Log a line on stderr when a G keeps its thread from the runtime for
    /// longer than `threshold` — asleep in the kernel in plain blocking code,
    /// or running without a runtime call — naming the G, the time and where
    /// (`GORT_BLOCKING_LOG`; 1 ms to 1 h; `None`: off, the default).
    pub fn blocking_log(mut self, threshold: Option<std::time::Duration>) -> Builder {
        self.blocking_log = Some(threshold);
        self
    }

    /// Most G stacks alive at once (default: unlimited). Beyond it
    /// [`crate::try_go`] returns an error.
    pub fn max_stacks(mut self, n: usize) -> Builder {
        self.max_stacks = Some(n);
        self
    }

    /// Guard stacks with `mprotect` (one memory mapping per stack) even where
    /// the kernel supports `MADV_GUARD_INSTALL`. For testing the fallback.
    pub fn force_mprotect_guards(mut self, on: bool) -> Builder {
        self.force_mprotect_guards = on;
        self
    }

    /// The configuration this builder would start, without starting it.
    /// Fails on a value out of range or on values that do not fit together
    /// (`max_threads` below `procs + 1`), naming where each came from.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut c = Config::from_env_unchecked();
        if let Some(n) = self.procs {
            c.procs = config::check_procs("procs", n)?;
            c.procs_source = Source::Builder("procs");
        }
        if let Some(n) = self.stack_size {
            c.stack_size = config::check_stack_size("stack_size", n)?;
        }
        if let Some(n) = self.max_threads {
            if n < 2 {
                return Err(ConfigError {
                    setting: "max_threads",
                    value: n.to_string(),
                    expected: "at least 2".into(),
                });
            }
            c.max_threads = n;
            c.max_threads_source = Source::Builder("max_threads");
        }
        if let Some(n) = self.max_stacks {
            if n == 0 {
                return Err(ConfigError {
                    setting: "max_stacks",
                    value: n.to_string(),
                    expected: "at least 1".into(),
                });
            }
            c.max_stacks = n;
        }
        if let Some(log) = self.blocking_log {
            if let Some(d) = log
                && !(config::MIN_BLOCKING_LOG..=std::time::Duration::from_secs(3600)).contains(&d)
            {
                return Err(ConfigError {
                    setting: "blocking_log",
                    value: format!("{d:?}"),
                    expected: "from 1ms to 1h".into(),
                });
            }
            c.blocking_log = log;
        }
        c.force_mprotect_guards = self.force_mprotect_guards;
        c.check()?;
        Ok(c)
    }

    /// Whether an unhandled panic in a G ends the process with the full
    /// crash dump (as in Go) instead of only reaching its `JoinHandle`
    /// (std's behaviour, the default). `GORT_TRACEBACK=crash` implies it.
    pub fn panic_aborts(mut self, on: bool) -> Builder {
        self.panic_aborts = on;
        self
    }

    /// Starts the runtime with this configuration.
    pub fn build(self) -> Result<(), BuildError> {
        let c = self.config()?;
        crate::ensure_started();
        if self.panic_aborts {
            crate::join::PANIC_ABORTS.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        scheduler::state::start(c)
            .map(|_| ())
            .map_err(|c| BuildError::AlreadyStarted { procs: c.procs })
    }
}
