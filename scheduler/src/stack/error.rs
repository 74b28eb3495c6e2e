//! Why a stack could not be made: [`StackError`], whose message names the
//! cause and what would help (the map limit, the address-space limit, the
//! configured limit, a size out of bounds).

use core::fmt;

use super::guard::{GuardKind, guard_kind};
use super::limits::read_max_map_count;

/// Why a stack could not be made. Nothing half-made is left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackError {
    /// Guards are `mprotect` pages (one mapping each) and the process ran
    /// into `vm.max_map_count`.
    MapLimit {
        /// Stacks in use when it happened.
        live: usize,
        /// `/proc/sys/vm/max_map_count`, read when the error was made (if
        /// readable).
        max_map_count: Option<u64>,
    },
    /// `mmap` could not reserve address space for a new chunk, even for a
    /// single stack.
    OutOfMemory {
        /// Bytes asked of the kernel (the last, smallest request).
        requested: usize,
        /// `errno` of the failed call.
        errno: i32,
        /// The address-space limit (`RLIMIT_AS`, `ulimit -v`) in bytes and
        /// the address space in use when it happened, if there is a limit.
        address_space: Option<(u64, u64)>,
    },
    /// The configured limit on live stacks (`max_stacks`) was reached.
    LimitReached {
        /// The limit.
        limit: usize,
    },
    /// The size is outside `MIN_STACK_SIZE..=MAX_STACK_SIZE`.
    InvalidSize {
        /// What was asked for.
        requested: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
}

impl StackError {
    /// A `MapLimit` error; reads `vm.max_map_count` (an error path, never a
    /// hot one).
    #[cold]
    pub(super) fn map_limit(live: usize) -> StackError {
        StackError::MapLimit {
            live,
            max_map_count: read_max_map_count(),
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::MapLimit {
                live,
                max_map_count,
            } => {
                write!(
                    f,
                    "cannot guard another G stack ({live} in use): the process is at its limit of memory \
                     mappings, vm.max_map_count (now "
                )?;
                match max_map_count {
                    Some(n) => write!(f, "{n}")?,
                    None => f.write_str("unknown")?,
                }
                f.write_str(
                    "); guard pages made with mprotect need a mapping of their own per stack",
                )?;
                // The probe result is cached: no syscall here.
                if guard_kind() == GuardKind::Madvise {
                    f.write_str(
                        " (mprotect guards were forced; this kernel has MADV_GUARD_INSTALL, which \
                         needs none)",
                    )
                } else {
                    f.write_str(
                        ", because this kernel lacks MADV_GUARD_INSTALL (Linux 6.13); raise \
                         vm.max_map_count or run on a newer kernel",
                    )
                }
            }
            StackError::OutOfMemory {
                requested,
                errno,
                address_space,
            } => {
                write!(
                    f,
                    "cannot reserve {requested} bytes of address space for G stacks: mmap failed with {}; ",
                    std::io::Error::from_raw_os_error(*errno)
                )?;
                match address_space {
                    Some((limit, used)) => write!(
                        f,
                        "the address-space limit (ulimit -v, RLIMIT_AS) is {} KiB and {} KiB are in use; \
                         raise ulimit -v, or make stacks smaller (Builder::stack_size, GORT_STACK_SIZE) \
                         so that more fit",
                        limit >> 10,
                        used >> 10
                    ),
                    None => f.write_str(
                        "the address space (a 32-bit process) or the overcommit policy \
                         (vm.overcommit_memory) allows no more; make stacks smaller \
                         (Builder::stack_size, GORT_STACK_SIZE) so that more fit",
                    ),
                }
            }
            StackError::LimitReached { limit } => write!(
                f,
                "the limit of {limit} live G stacks is reached (max_stacks)"
            ),
            StackError::InvalidSize {
                requested,
                min,
                max,
            } => write!(
                f,
                "invalid G stack size {requested} bytes: expected {min} to {max} bytes"
            ),
        }
    }
}

impl std::error::Error for StackError {}
