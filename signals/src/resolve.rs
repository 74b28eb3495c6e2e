//! `file:line` in the dump itself: a symbolizer thread, started at
//! start-up and idle until a dump asks it to resolve the addresses it is
//! about to print.
//!
//! # Why a thread, and why it is safe
//!
//! Reading DWARF allocates and parses, which a signal handler may not do.
//! Preparing line tables for every address at start-up would cost time and
//! memory in every process for the rare one that crashes (the line tables
//! of a debug build are tens of MB), and a crash in the first milliseconds
//! would come before they were ready. Symbolizing in a helper process
//! would need an `exec` of some binary from the handler and a pipe round
//! trip. So the crashing process keeps one parked thread (a few KiB of
//! memory, ~50 µs to start) that reads the debug info of the modules only
//! when a dump needs it, lazily, per compilation unit.
//!
//! The handler side ([`request`]) stays async-signal-safe: it copies the
//! addresses into static atomics, bumps a futex word, and waits on another
//! futex word with a deadline — no allocation, no lock that ordinary code
//! may hold (the request slot is a try-lock only dumps take; a dump that
//! finds it taken prints without `file:line`). The thread allocates as any
//! thread does. If it cannot answer in time — the crash corrupted the heap,
//! or the faulting thread died holding the allocator's lock, or the debug
//! info is huge — the dump prints without it (function names from the
//! start-up symbol table and `module+offset`), so a dump is never lost.
//!
//! # Protocol
//!
//! ```text
//! dump (handler)                         symbolizer thread
//! try-lock SLOT
//! write REQ_PCS[..n], REQ_N
//! REQ_SEQ += 1, futex_wake(REQ_SEQ) ---> wakes; reads n, pcs; re-reads
//!                                        REQ_SEQ (changed: drop, retry)
//! futex_wait(DONE_SEQ) until == seq      resolves; leaks an Answer;
//!   or the deadline                      ANSWER = it; DONE_SEQ = seq;
//!                                  <---  futex_wake(DONE_SEQ)
//! reads ANSWER (acquire) if seq matches
//! unlock SLOT
//! ```
//!
//! An answer is never freed: the handler may hold it until the process
//! ends, and a process dumps a handful of times at most.

use crate::modules;
use crate::symbolize::Binary;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Most distinct addresses one request carries.
pub const MAX_REQUEST: usize = 4096;

/// How long a dump waits for the thread. Generous: the first request of a
/// big debug build parses a good part of its DWARF.
pub const WAIT_NS: u64 = 5_000_000_000;

static SLOT: AtomicBool = AtomicBool::new(false);
static REQ_PCS: [AtomicUsize; MAX_REQUEST] = [const { AtomicUsize::new(0) }; MAX_REQUEST];
static REQ_N: AtomicUsize = AtomicUsize::new(0);
static REQ_SEQ: AtomicU32 = AtomicU32::new(0);
static DONE_SEQ: AtomicU32 = AtomicU32::new(0);
static ANSWER: AtomicPtr<Answer> = AtomicPtr::new(core::ptr::null_mut());
/// Whether the thread runs (requests are pointless otherwise).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The process that started it: a forked child has no symbolizer thread.
static PID: AtomicU32 = AtomicU32::new(0);

/// One source frame of an answer: string ranges into [`Answer::text`].
#[derive(Clone, Copy, Debug)]
struct Frame {
    function: (u32, u32),
    file: (u32, u32),
    line: u32,
}

/// What the thread found for one request: for each lookup address (sorted),
/// its source frames, innermost first, and the run-time address of the
/// physical function's start (0: unknown).
#[derive(Debug, Default)]
pub struct Answer {
    addrs: Vec<usize>,
    /// For `addrs[i]`: `frames[spans[i].0..spans[i].1]` and the entry.
    spans: Vec<(u32, u32, usize)>,
    frames: Vec<Frame>,
    text: String,
}

/// A source frame from an [`Answer`].
#[derive(Clone, Copy, Debug)]
pub struct SourceFrame<'a> {
    /// Function name (`?` when unknown).
    pub function: &'a str,
    /// Source file (empty when unknown).
    pub file: &'a str,
    /// Line (0 when unknown).
    pub line: u32,
}

impl Answer {
    /// The frames at lookup address `addr` (innermost first) and the
    /// physical function's start, if the answer covers it.
    /// Async-signal-safe: a binary search and slicing.
    pub fn frames(&self, addr: usize) -> Option<(impl Iterator<Item = SourceFrame<'_>>, usize)> {
        let i = self.addrs.binary_search(&addr).ok()?;
        let &(lo, hi, entry) = self.spans.get(i)?;
        let fs = self.frames.get(lo as usize..hi as usize)?;
        if fs.is_empty() {
            return None;
        }
        let s = |(off, len): (u32, u32)| {
            self.text
                .get(off as usize..off as usize + len as usize)
                .unwrap_or("")
        };
        Some((
            fs.iter().map(move |f| SourceFrame {
                function: match s(f.function) {
                    "" => "?",
                    n => n,
                },
                file: s(f.file),
                line: f.line,
            }),
            entry,
        ))
    }

    fn push_str(&mut self, s: &str) -> (u32, u32) {
        let off = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        self.text.push_str(s);
        (off, u32::try_from(s.len()).unwrap_or(0))
    }
}

/// Starts the symbolizer thread (once). Allocates; start-up only.
pub fn start() {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    PID.store(std::process::id(), Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name("gort-symbolizer".into())
        .stack_size(1 << 20)
        .spawn(thread_main);
    match spawned {
        Ok(_) => scheduler::schedule::add_helper_thread(),
        Err(_) => RUNNING.store(false, Ordering::Release),
    }
}

/// Whether a symbolizer thread is there to ask (not in a forked child,
/// where only the forking thread lives on). Async-signal-safe.
pub fn available() -> bool {
    // SAFETY: getpid is async-signal-safe.
    RUNNING.load(Ordering::Acquire)
        && PID.load(Ordering::Acquire) == unsafe { libc::getpid() } as u32
}

/// A request being filled: holds the request slot until [`Request::send`]
/// (or drop). Async-signal-safe.
#[derive(Debug)]
pub struct Request {
    n: usize,
}

impl Request {
    /// Takes the request slot. `None`: no symbolizer thread, or another
    /// dump is asking (that dump then prints without `file:line`).
    pub fn begin() -> Option<Request> {
        if !available()
            || SLOT
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(Request { n: 0 })
    }

    /// Adds a lookup address (an exact pc, or a return address − 1).
    /// Addresses past [`MAX_REQUEST`] are dropped (they print without
    /// `file:line`).
    pub fn add(&mut self, addr: usize) {
        if self.n < MAX_REQUEST {
            REQ_PCS[self.n].store(addr, Ordering::Relaxed);
            self.n += 1;
        }
    }

    /// Sends the request and waits at most `wait_ns` for the answer.
    /// `None`: no answer in time.
    pub fn send(self, wait_ns: u64) -> Option<&'static Answer> {
        REQ_N.store(self.n, Ordering::Relaxed);
        let seq = REQ_SEQ.load(Ordering::Relaxed).wrapping_add(1);
        // Release: the pcs and the count are visible to whoever sees `seq`.
        REQ_SEQ.store(seq, Ordering::Release);
        futex_wake(&REQ_SEQ);
        let deadline = now_ns().saturating_add(wait_ns);
        loop {
            let done = DONE_SEQ.load(Ordering::Acquire);
            if done == seq {
                let p = ANSWER.load(Ordering::Acquire);
                // SAFETY: answers are leaked (never freed) and published
                // before DONE_SEQ with release ordering.
                return (!p.is_null()).then(|| unsafe { &*p });
            }
            let now = now_ns();
            if now >= deadline {
                return None;
            }
            futex_wait(&DONE_SEQ, done, (deadline - now).min(10_000_000));
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        SLOT.store(false, Ordering::Release);
    }
}

fn thread_main() {
    // This thread never runs user code and must not take signals meant for
    // the process (a SIGQUIT, a SIGPROF): block them all.
    // SAFETY: building a full set and changing this thread's own mask.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
    }
    let mut binaries = Binaries::default();
    let mut seen = 0u32;
    loop {
        let seq = REQ_SEQ.load(Ordering::Acquire);
        if seq == seen {
            futex_wait(&REQ_SEQ, seq, 1_000_000_000);
            continue;
        }
        let n = REQ_N.load(Ordering::Relaxed).min(MAX_REQUEST);
        let mut addrs: Vec<usize> = REQ_PCS[..n]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        if REQ_SEQ.load(Ordering::Acquire) != seq {
            continue; // overwritten while read: take the newer one
        }
        seen = seq;
        addrs.sort_unstable();
        addrs.dedup();
        let answer = Box::leak(Box::new(binaries.answer(addrs)));
        ANSWER.store(answer, Ordering::Release);
        DONE_SEQ.store(seq, Ordering::Release);
        futex_wake(&DONE_SEQ);
    }
}

/// The modules' files, loaded on first use (and kept: later dumps reuse
/// what earlier ones parsed).
#[derive(Default)]
struct Binaries {
    /// Per module index: not tried yet, or the loaded file (`None`: could
    /// not be used).
    loaded: Vec<Option<Option<Binary<'static>>>>,
}

impl Binaries {
    fn get(&mut self, mi: usize) -> Option<&Binary<'static>> {
        let mods = modules::modules();
        if self.loaded.len() < mods.len() {
            self.loaded.resize_with(mods.len(), || None);
        }
        let slot = self.loaded.get_mut(mi)?;
        slot.get_or_insert_with(|| {
            let m = &mods[mi];
            let path = if mi == 0 || m.path.is_empty() {
                "/proc/self/exe"
            } else {
                m.path.as_str()
            };
            let data = map_file(path)?;
            let b = Binary::load(std::path::Path::new(&m.path), data).ok()?;
            // A file replaced since it was loaded would lie.
            let mut hex = [0u8; 80];
            let want = m.build_id_hex(&mut hex);
            if !want.is_empty() && b.build_id.as_deref().map(str::as_bytes) != Some(want) {
                return None;
            }
            Some(b)
        })
        .as_ref()
    }

    fn answer(&mut self, addrs: Vec<usize>) -> Answer {
        let mut a = Answer::default();
        for &addr in &addrs {
            let lo = a.frames.len() as u32;
            let mut entry = 0;
            let mods = modules::modules();
            if let Some(mi) = mods.iter().position(|m| m.contains(addr))
                && let Some(b) = self.get(mi)
            {
                let base = mods[mi].base;
                let probe = addr.wrapping_sub(base) as u64;
                if let Some((start, _)) = b.symbol(probe) {
                    entry = (start as usize).wrapping_add(base);
                }
                for l in b.frames(probe) {
                    let function = a.push_str(l.function.as_deref().unwrap_or(""));
                    let file = a.push_str(l.file.as_deref().unwrap_or(""));
                    a.frames.push(Frame {
                        function,
                        file,
                        line: l.line,
                    });
                }
            }
            a.spans.push((lo, a.frames.len() as u32, entry));
        }
        a.addrs = addrs;
        a
    }
}

/// Maps a file read-only for the life of the process.
fn map_file(path: &str) -> Option<&'static [u8]> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).ok()?;
    let len = usize::try_from(f.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    // SAFETY: a fresh private read-only mapping of an open file at an
    // address the kernel picks; never unmapped, so the slice is 'static.
    // Loaded ELF files are replaced by rename, not truncated in place (see
    // symbols.rs), so the pages stay readable.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is `len` readable bytes and lives forever.
    Some(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe; ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a private futex wait on a live atomic with a relative
    // timeout; async-signal-safe (a system call).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: a private futex wake on a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}
