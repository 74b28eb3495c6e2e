//! What the kernel says about another thread of this process: how much CPU
//! it has used, whether it is on a CPU right now, and which system call it
//! sleeps in. This is `sysmon`'s only window on code gort did not write (a
//! G in `std::thread::sleep`, blocking std I/O, a std lock, a C library),
//! which never tells the runtime that it is about to block.
//!
//! Two sources, cheapest first (figures from the 2-CPU VM the benchmarks
//! run on; see docs/design.md, "Plain blocking code"):
//!
//! - the thread's CPU clock (`clock_gettime` on the clock id the kernel
//!   derives from the tid, as glibc's `pthread_getcpuclockid` does): ~0.2 µs.
//!   If it has not advanced over an interval, the thread did not run then.
//! - `/proc/self/task/TID/stat`, field 3 (`R` running or runnable, `S`
//!   sleeping, `D` in uninterruptible sleep...): ~2.8 µs with the file kept
//!   open (`pread` at offset 0 makes the kernel print it afresh). It tells
//!   a thread asleep in the kernel from one that is runnable but waiting for
//!   a CPU, which the CPU clock alone cannot.
//!
//! sysmon reads the clock of each M whose lent P other work waits for and
//! reads the state file only when the clock stood still. Only sysmon calls
//! this module (it allocates: a path, a `File`).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// CPU time (ns) thread `tid` of this process has used, or `None` if the
/// kernel refuses (the thread exited).
pub(crate) fn cpu_ns(tid: i32) -> Option<u64> {
    if tid <= 0 {
        return None;
    }
    // The kernel's encoding of a per-thread CPU clock (CPUCLOCK_PERTHREAD
    // = 4, CPUCLOCK_SCHED = 2: run time in ns), the one glibc's
    // `pthread_getcpuclockid` returns for the same thread.
    let clock = ((!tid) << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; an invalid clock id is an error
    // return, not undefined behaviour.
    if unsafe { libc::clock_gettime(clock as libc::clockid_t, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The scheduling state of a thread, as `/proc` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    /// On a CPU or waiting for one (`R`).
    Runnable,
    /// Asleep in the kernel (`S`, `D`, `I`) or stopped (`T`, `t`).
    Asleep,
}

/// An open `/proc/self/task/TID/stat` for one thread, reopened when the
/// thread changes.
#[derive(Debug, Default)]
pub(crate) struct StatFile {
    tid: i32,
    file: Option<File>,
    /// Opening failed for this tid (no /proc): do not retry every round.
    failed: bool,
}

impl StatFile {
    /// The state of thread `tid`, or `None` when /proc cannot tell (not
    /// mounted, the thread exited).
    pub(crate) fn state(&mut self, tid: i32) -> Option<RunState> {
        if tid != self.tid {
            *self = StatFile {
                tid,
                file: File::open(format!("/proc/self/task/{tid}/stat")).ok(),
                failed: false,
            };
            self.failed = self.file.is_none();
        }
        if self.failed {
            return None;
        }
        let mut buf = [0u8; 256];
        let n = self.file.as_ref()?.read_at(&mut buf, 0).ok()?;
        parse_state(&buf[..n])
    }
}

/// Field 3 of a `stat` line: `pid (comm) S ...`. The name may hold spaces
/// and parentheses, so the state follows the *last* `)`.
fn parse_state(line: &[u8]) -> Option<RunState> {
    let close = line.iter().rposition(|&b| b == b')')?;
    match *line.get(close + 2)? {
        b'R' => Some(RunState::Runnable),
        b'S' | b'D' | b'I' | b'T' | b't' | b'W' | b'P' => Some(RunState::Asleep),
        _ => None,
    }
}

/// The system call thread `tid` sleeps in and the user-space pc it was made
/// from (`/proc/self/task/TID/syscall`: `nr a1 .. a6 sp pc`), or `None`
/// when the thread is not in a system call or /proc cannot tell.
pub(crate) fn syscall_of(tid: i32) -> Option<(i64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let pc = fields.last()?;
    let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16).ok()?;
    Some((nr, pc))
}

/// Names a code address for the blocking log (a symbol, a module and
/// offset): installed by the crash-tracing layer, which has the symbol
/// table. Called from sysmon only, never from a signal handler.
static DESCRIBE_PC: std::sync::OnceLock<fn(usize) -> Option<String>> = std::sync::OnceLock::new();

/// Installs the function that names code addresses in the blocking log
/// (first caller wins).
pub fn set_pc_describer(f: fn(usize) -> Option<String>) {
    let _ = DESCRIBE_PC.set(f);
}

/// What the installed describer says of `pc`.
pub(crate) fn describe_pc(pc: usize) -> Option<String> {
    DESCRIBE_PC.get().and_then(|f| f(pc))
}

/// A name for the system calls plain blocking code sleeps in most, for the
/// blocking log.
pub(crate) fn syscall_name(nr: i64) -> Option<&'static str> {
    let names: &[(libc::c_long, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_pwrite64, "pwrite64"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_writev, "writev"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_close, "close"),
        (libc::SYS_fsync, "fsync"),
        (libc::SYS_fdatasync, "fdatasync"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_flock, "flock"),
        (libc::SYS_fcntl, "fcntl"),
        (libc::SYS_ioctl, "ioctl"),
    ];
    names
        .iter()
        // `c_long` is `i64` on 64-bit targets and `i32` on i686.
        .find(|(n, _)| {
            #[allow(clippy::unnecessary_cast)]
            let n = *n as i64;
            n == nr
        })
        .map(|(_, name)| *name)
}

/// The lowest scheduling priority a thread can have without leaving the
/// normal policy: weight 15 against 1024 for nice 0, so ~1.5 % of a CPU
/// that a nice-0 thread also wants. (`SCHED_IDLE`, weight 3, was tried: it
/// also yields to every other process on the machine, and a demoted G that
/// holds a lock others need could then starve for seconds on a busy host.)
pub(crate) const LOW_NICE: i32 = 19;

/// The nice value of thread `tid`, or `None` if it cannot be read.
pub(crate) fn nice_of(tid: i32) -> Option<i32> {
    // getpriority returns -1 both as a value and as an error: tell them
    // apart by errno, as its manual says.
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: a plain query; a bad tid is an error return.
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    // SAFETY: as above.
    (n != -1 || unsafe { *libc::__errno_location() } == 0).then_some(n)
}

/// Sets the nice value of thread `tid` (any thread of the process may
/// raise another's; lowering one needs `CAP_SYS_NICE` or `RLIMIT_NICE`).
pub(crate) fn set_nice(tid: i32, nice: i32) -> bool {
    // SAFETY: a plain call; a bad tid or value is an error return.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) == 0 }
}

/// Whether a thread of this process may go back to its nice value after
/// [`LOW_NICE`]: with `CAP_SYS_NICE`, or an `RLIMIT_NICE` that allows the
/// thread's own nice value (the kernel's rule: nice `n` needs a limit of at
/// least `20 - n`). Read, not tried: a thread at nice 19 may wait seconds
/// for a CPU on a busy host.
pub(crate) fn can_restore_nice() -> bool {
    // SAFETY: gettid has no preconditions.
    let Some(own) = nice_of(unsafe { libc::gettid() }) else {
        return false;
    };
    if has_cap_sys_nice() {
        return true;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NICE, &mut lim) } != 0 {
        return false;
    }
    let need = (20 - own).max(0) as libc::rlim_t;
    lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= need
}

/// `CAP_SYS_NICE` (bit 23) in the effective set, from `/proc/self/status`.
fn has_cap_sys_nice() -> bool {
    const CAP_SYS_NICE: u32 = 23;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stat_line_state() {
        assert_eq!(
            parse_state(b"12 (a) b) S 1 2 3"),
            Some(RunState::Asleep),
            "the state follows the last parenthesis"
        );
        assert_eq!(parse_state(b"12 (x) R 1"), Some(RunState::Runnable));
        assert_eq!(parse_state(b"12 (x) D 1"), Some(RunState::Asleep));
        assert_eq!(parse_state(b"garbage"), None);
    }

    /// A thread asleep in `std::thread::sleep` reads as asleep, its CPU
    /// clock stands still; a spinning one reads as runnable, its clock runs.
    #[test]
    fn sleeping_and_spinning_threads() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            std::thread::sleep(Duration::from_millis(400));
        });
        let tid = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut stat = StatFile::default();
        assert_eq!(stat.state(tid), Some(RunState::Asleep));
        let a = cpu_ns(tid).expect("cpu clock of a live thread");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(cpu_ns(tid), Some(a), "a sleeping thread uses no CPU");
        let (nr, _pc) = syscall_of(tid).expect("a sleeping thread is in a syscall");
        // Under qemu-user /proc shows the host's system call (x86_64
        // numbers), not the guest's.
        if !testkit::under_qemu() {
            assert!(
                matches!(syscall_name(nr), Some("nanosleep" | "clock_nanosleep")),
                "std::thread::sleep sleeps in nanosleep, got {nr}"
            );
        }
        sleeper.join().unwrap();

        let stop = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let spinner = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            while !flag.load(core::sync::atomic::Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        });
        let tid = rx.recv().unwrap();
        let a = cpu_ns(tid).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let b = cpu_ns(tid).unwrap();
        stop.store(true, core::sync::atomic::Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(b > a, "a spinning thread's clock advances");
        // The kernel lets the clock go once the thread is reaped, which may
        // be a little after `join` returns (under qemu-user, later still).
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            cpu_ns(tid).is_none()
        });
        assert!(gone, "an exited thread has no clock");
    }

    /// The probe agrees with what the kernel allows: a thread that drops to
    /// nice 19 can come back exactly when `can_restore_nice` says so.
    #[test]
    fn the_restore_probe_matches_the_kernel() {
        let says = can_restore_nice();
        let can = std::thread::spawn(|| {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let own = nice_of(tid).unwrap();
            set_nice(tid, LOW_NICE) && set_nice(tid, own)
        })
        .join()
        .unwrap();
        assert_eq!(says, can);
    }
}
