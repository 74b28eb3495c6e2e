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
//! The handler side ([`Request`]) stays async-signal-safe: it copies the
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
//! A dump may also send a request without waiting ([`Request::prefetch`]:
//! the crasher's own stack, while it walks the other Gs) and ask again
//! with everything; the thread resolves what the second request adds.
//! Spawn sites (`created by`) come after the addresses: the thread answers
//! the addresses, then looks the sites up and bumps `SITES_SEQ`, for
//! which a dump waits briefly ([`SITES_WAIT_NS`]).
//!
//! # Start-up work
//!
//! Once started, the thread indexes the executable (its symbols and the
//! units' address ranges), then warms up: it parses the units that hold
//! the runtime's park and switch code (in an optimised single-unit build,
//! the whole program) and builds the index of which units name which
//! source files. Longer work polls for requests between its steps, so a
//! dump that comes early waits for the index, not for the rest.
//!
//! An answer is never freed: a dump may hold it until the process ends.
//! Each answer has everything resolved so far (later dumps often need
//! nothing new), and a new one is made only when a request resolved
//! something new, so the memory they take is bounded by the code that
//! dumps can name, however many live dumps a process takes.

use crate::modules;
use crate::symbolize::{Binary, FileIndex, Site};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Most distinct addresses one request carries.
pub const MAX_REQUEST: usize = 4096;
/// Most spawn sites one request carries.
pub const MAX_SITES: usize = 256;

/// How long a dump waits for the thread without seeing it progress (an
/// address resolved): a thread that is working (a big debug build, or
/// emulation under qemu-user) is waited for up to [`WAIT_MAX_NS`]; one
/// that is stuck (on the allocator's lock, say) costs this much once.
pub const WAIT_NS: u64 = 5_000_000_000;
/// The most a dump waits for the thread, progressing or not.
pub const WAIT_MAX_NS: u64 = 60_000_000_000;
/// Addresses the thread has resolved (and 1 for its start-up index): the
/// progress a waiting dump watches.
static PROGRESS: AtomicUsize = AtomicUsize::new(0);

static SLOT: AtomicBool = AtomicBool::new(false);
static REQ_PCS: [AtomicUsize; MAX_REQUEST] = [const { AtomicUsize::new(0) }; MAX_REQUEST];
static REQ_N: AtomicUsize = AtomicUsize::new(0);
/// Spawn sites asked for: `Location::file()` pointer and length, line and
/// column.
static REQ_SITES: [[AtomicUsize; 4]; MAX_SITES] =
    [const { [const { AtomicUsize::new(0) }; 4] }; MAX_SITES];
static REQ_NSITES: AtomicUsize = AtomicUsize::new(0);
static REQ_SEQ: AtomicU32 = AtomicU32::new(0);
static DONE_SEQ: AtomicU32 = AtomicU32::new(0);
/// The last request whose spawn sites were looked up too.
static SITES_SEQ: AtomicU32 = AtomicU32::new(0);

/// How long a dump waits for spawn sites once its addresses are answered.
pub const SITES_WAIT_NS: u64 = 50_000_000;
static ANSWER: AtomicPtr<Answer> = AtomicPtr::new(core::ptr::null_mut());
/// Whether the thread runs (requests are pointless otherwise).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The process that started it: a forked child has no symbolizer thread.
static PID: AtomicU32 = AtomicU32::new(0);

/// A spawn site: its file's address and its line.
type SiteKey = (usize, u32);
/// A string of an answer: offset and length in [`Answer::text`].
type Str = (u32, u32);

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
    /// Spawn sites, sorted: (file pointer, line) -> the function that holds
    /// the site and its file as the debug info names it (absolute).
    sites: Vec<(SiteKey, Str, Str)>,
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

    /// Whether the answer has `addr` (resolved, with or without frames).
    /// Async-signal-safe.
    pub fn covers(&self, addr: usize) -> bool {
        self.addrs.binary_search(&addr).is_ok()
    }

    /// Whether the answer has looked `site` up (found or not).
    /// Async-signal-safe.
    pub fn covers_site(&self, site: &core::panic::Location<'static>) -> bool {
        let key = (site.file().as_ptr() as usize, site.line());
        self.sites.binary_search_by_key(&key, |s| s.0).is_ok()
    }

    /// The function holding a spawn site and the site's full file path, if
    /// the debug info has the site. Async-signal-safe.
    pub fn site(&self, site: &core::panic::Location<'static>) -> Option<(&str, &str)> {
        let key = (site.file().as_ptr() as usize, site.line());
        let i = self.sites.binary_search_by_key(&key, |s| s.0).ok()?;
        let (_, f, p) = self.sites[i];
        let s = |(off, len): (u32, u32)| self.text.get(off as usize..off as usize + len as usize);
        Some((s(f)?, s(p)?)).filter(|(f, _)| !f.is_empty())
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
        Ok(_) => scheduler::deadlock::add_helper_thread(),
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

/// The latest answer: every address and site resolved so far in this
/// process. Async-signal-safe.
pub fn latest() -> Option<&'static Answer> {
    let p = ANSWER.load(Ordering::Acquire);
    // SAFETY: answers are leaked (never freed) and published with release
    // ordering.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Set when the thread has indexed the executable and prepared what most
/// dumps need (see `Thread::warm_up`).
static PREPARED: AtomicBool = AtomicBool::new(false);

/// Whether the symbolizer thread has indexed the executable and prepared
/// what most dumps need: from here on a dump waits only for its own
/// addresses (a dump before waits for that work too, but is answered
/// between its steps). For benchmarks and tests. Async-signal-safe.
pub fn prepared() -> bool {
    PREPARED.load(Ordering::Acquire)
}

/// Set when a request went unanswered: later dumps of this process (the
/// other Ms' sections in crash mode) do not wait again, they print with
/// what [`latest`] has.
static GAVE_UP: AtomicBool = AtomicBool::new(false);

/// A request being filled: holds the request slot until [`Request::send`]
/// (or drop). Async-signal-safe.
#[derive(Debug)]
pub struct Request {
    n: usize,
    sites: usize,
}

impl Request {
    /// Takes the request slot. `None`: no symbolizer thread, or another
    /// dump is asking (that dump then prints without `file:line`).
    pub fn begin() -> Option<Request> {
        if !available()
            || GAVE_UP.load(Ordering::Acquire)
            || SLOT
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(Request { n: 0, sites: 0 })
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

    /// Adds a spawn site, for its function and full path (`created by`).
    /// Sites past [`MAX_SITES`] are dropped.
    pub fn add_site(&mut self, site: &'static core::panic::Location<'static>) {
        if self.sites < MAX_SITES {
            let slot = &REQ_SITES[self.sites];
            slot[0].store(site.file().as_ptr() as usize, Ordering::Relaxed);
            slot[1].store(site.file().len(), Ordering::Relaxed);
            slot[2].store(site.line() as usize, Ordering::Relaxed);
            slot[3].store(site.column() as usize, Ordering::Relaxed);
            self.sites += 1;
        }
    }

    /// Sends the request and waits for the answer: at most `wait_ns` after
    /// the thread last made progress, [`WAIT_MAX_NS`] in all. With no
    /// answer in time, [`latest`] (which may lack some addresses, or be
    /// `None`), and later requests are not sent.
    pub fn send(self, wait_ns: u64) -> Option<&'static Answer> {
        self.send_waiting(wait_ns, SITES_WAIT_NS)
    }

    /// Sends the request without waiting for the answer, and frees the
    /// slot: the thread starts on these addresses while the dump captures
    /// more (the other Gs' stacks), and a later request that repeats them
    /// finds them resolved. If that later request overwrites this one
    /// before the thread has read it, the thread takes the later one (or,
    /// reading during the overwrite, a mix of both: either way what it
    /// misses is asked again).
    pub fn prefetch(self) {
        self.publish();
    }

    /// Makes the request visible to the thread and wakes it; its number.
    fn publish(&self) -> u32 {
        REQ_N.store(self.n, Ordering::Relaxed);
        REQ_NSITES.store(self.sites, Ordering::Relaxed);
        let seq = REQ_SEQ.load(Ordering::Relaxed).wrapping_add(1);
        // Release: the pcs and the count are visible to whoever sees `seq`.
        REQ_SEQ.store(seq, Ordering::Release);
        futex_wake(&REQ_SEQ);
        seq
    }

    fn send_waiting(self, wait_ns: u64, sites_wait_ns: u64) -> Option<&'static Answer> {
        let seq = self.publish();
        let start = now_ns();
        let hard = start.saturating_add(WAIT_MAX_NS.max(wait_ns));
        let mut deadline = start.saturating_add(wait_ns);
        let mut seen = PROGRESS.load(Ordering::Relaxed);
        loop {
            let progress = PROGRESS.load(Ordering::Relaxed);
            if progress != seen {
                seen = progress;
                deadline = now_ns().saturating_add(wait_ns).min(hard);
            }
            let done = DONE_SEQ.load(Ordering::Acquire);
            if done == seq {
                if self.sites > 0 {
                    wait_for(&SITES_SEQ, seq, now_ns().saturating_add(sites_wait_ns));
                }
                return latest();
            }
            let now = now_ns();
            if now >= deadline {
                GAVE_UP.store(true, Ordering::Release);
                return latest();
            }
            futex_wait(&DONE_SEQ, done, (deadline - now).min(10_000_000));
        }
    }
}

/// Waits until `word` reaches `seq` (or a later request: sites are looked
/// up in batches that may cover several requests) or `deadline` passes
/// (futex, 10 ms steps).
fn wait_for(word: &AtomicU32, seq: u32, deadline: u64) {
    loop {
        let v = word.load(Ordering::Acquire);
        let now = now_ns();
        if v.wrapping_sub(seq) as i32 >= 0 || now >= deadline {
            return;
        }
        futex_wait(word, v, (deadline - now).min(10_000_000));
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
    let mut t = Thread {
        binaries: Binaries::default(),
        seen: 0,
        sites: Vec::new(),
        sites_seq: 0,
    };
    // The executable's symbols and debug info index, ready before any dump
    // asks (a few ms of this thread's time at start-up, off every other
    // thread's path). The module list first, in case the thread was
    // started before the crate's `init` made it (once; later calls return
    // it).
    modules::init();
    t.binaries.get(0);
    PROGRESS.fetch_add(1, Ordering::Relaxed);
    // Then, still before any dump, what most dumps need (see `warm_up`);
    // a dump that comes meanwhile is answered first.
    t.warm_up();
    PREPARED.store(true, Ordering::Release);
    loop {
        // Sites taken during the warm-up or a previous walk, then any new
        // request's.
        t.serve_sites();
        if !t.poll() {
            futex_wait(&REQ_SEQ, t.seen, 1_000_000_000);
        }
    }
}

/// The symbolizer thread's state.
struct Thread {
    binaries: Binaries,
    /// The last request taken.
    seen: u32,
    /// Spawn sites asked for and not looked up yet.
    sites: Vec<[usize; 4]>,
    /// The request those sites came with (the latest one).
    sites_seq: u32,
}

impl Thread {
    /// Takes a new request if there is one: answers its addresses at once
    /// and keeps its spawn sites for [`Thread::serve_sites`]. Called
    /// between the steps of longer work (the start-up warm-up, the line
    /// table walks of spawn sites), so a dump never waits behind them for
    /// its frames. Returns whether it took one.
    fn poll(&mut self) -> bool {
        let seq = REQ_SEQ.load(Ordering::Acquire);
        if seq == self.seen {
            return false;
        }
        let n = REQ_N.load(Ordering::Relaxed).min(MAX_REQUEST);
        let addrs: Vec<usize> = REQ_PCS[..n]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let ns = REQ_NSITES.load(Ordering::Relaxed).min(MAX_SITES);
        let sites = REQ_SITES[..ns]
            .iter()
            .map(|s| s.each_ref().map(|v| v.load(Ordering::Relaxed)));
        let sites: Vec<[usize; 4]> = sites.collect();
        if REQ_SEQ.load(Ordering::Acquire) != seq {
            return true; // overwritten while read: the caller polls again
        }
        self.seen = seq;
        // A new answer only when something new was resolved: answers are
        // never freed (see the module docs), so repeated live dumps of the
        // same code reuse one.
        let before = self.binaries.addr_cache.len();
        self.binaries.resolve(&addrs);
        if ANSWER.load(Ordering::Acquire).is_null() || before != self.binaries.addr_cache.len() {
            publish(&self.binaries);
        }
        DONE_SEQ.store(seq, Ordering::Release);
        futex_wake(&DONE_SEQ);
        // Spawn sites come second, and a dump waits for them only briefly
        // ([`SITES_WAIT_NS`]); what they find serves the dumps after.
        self.sites.extend(sites);
        self.sites_seq = seq;
        true
    }

    /// Looks up the spawn sites taken so far, answering new requests'
    /// addresses between units, then tells the dumps waiting for them.
    fn serve_sites(&mut self) {
        while !self.sites.is_empty() {
            let mut sites = core::mem::take(&mut self.sites);
            let seq = self.sites_seq;
            sites.sort_unstable();
            sites.dedup();
            sites.retain(|s| !self.binaries.site_cache.contains_key(&(s[0], s[2] as u32)));
            if !sites.is_empty() {
                self.resolve_sites(&sites);
                publish(&self.binaries);
            }
            SITES_SEQ.store(seq, Ordering::Release);
            futex_wake(&SITES_SEQ);
        }
    }

    /// Start-up work that makes the first dump cheap, in steps between
    /// which requests are answered: the line table and functions of the
    /// unit holding the runtime's code (in an optimised build with one
    /// codegen unit, the whole program's, which a dump's first address
    /// would otherwise parse while the dump waits), then the index of
    /// which units name which source files (for `created by`).
    fn warm_up(&mut self) {
        // Code every dump shows: the runtime's park and switch paths, the
        // crash handler's crate. One address per unit to parse.
        let here: fn() = thread_main;
        let yield_now: fn() = scheduler::yield_now;
        let current_g: fn() -> Option<scheduler::GRef> = scheduler::current_g;
        let sleep: fn(core::time::Duration) = scheduler::sleep;
        for f in [
            here as usize,
            yield_now as usize,
            current_g as usize,
            sleep as usize,
        ] {
            self.binaries.resolve(&[f]);
            self.poll();
        }
        if let Some(b) = self.binaries.get(0) {
            let index = b.file_index(&mut || {
                self.poll();
            });
            self.binaries.files = Some(index);
        }
    }

    /// Resolves spawn sites (`[file pointer, file length, line, column]`)
    /// in the executable's debug info.
    fn resolve_sites(&mut self, sites: &[[usize; 4]]) {
        let Some(b) = self.binaries.get(0) else {
            for s in sites {
                self.binaries.site_cache.insert((s[0], s[2] as u32), None);
            }
            return;
        };
        if self.binaries.files.is_none() {
            let index = b.file_index(&mut || {
                self.poll();
            });
            self.binaries.files = Some(index);
        }
        let files = self.binaries.files.take().unwrap_or_default();
        let lookups: Vec<Site<'static>> = sites
            .iter()
            .map(|&[ptr, len, line, column]| {
                // SAFETY: the pointer and length are those of a
                // `Location::file()`, a `&'static str`, copied by `add_site`.
                let file = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
                Site {
                    file: core::str::from_utf8(file).unwrap_or(""),
                    line: line as u32,
                    column: column as u32,
                }
            })
            .collect();
        let found = b.spawners(&files, &lookups, &mut || {
            self.poll();
        });
        self.binaries.files = Some(files);
        for (s, f) in sites.iter().zip(found) {
            self.binaries.site_cache.insert((s[0], s[2] as u32), f);
        }
    }
}

/// Publishes an answer with everything resolved so far.
fn publish(binaries: &Binaries) {
    let answer = Box::leak(Box::new(binaries.answer()));
    ANSWER.store(answer, Ordering::Release);
}

/// The modules' files, loaded on first use (and kept: later dumps reuse
/// what earlier ones parsed).
#[derive(Default)]
struct Binaries {
    /// Per module index: not tried yet, or the loaded file (`None`: could
    /// not be used).
    loaded: Vec<Option<Option<&'static Binary<'static>>>>,
    /// Which units of the executable name which files (spawn sites).
    files: Option<FileIndex>,
    /// Addresses resolved: source frames and the function's start. Sorted,
    /// so answers come out sorted.
    addr_cache: std::collections::BTreeMap<usize, (Vec<crate::symbolize::Loc>, usize)>,
    /// Spawn sites looked up: (file pointer, line) -> what was found.
    /// Sorted, so answers come out sorted.
    site_cache: std::collections::BTreeMap<(usize, u32), Option<(String, String)>>,
}

impl Binaries {
    /// Module `mi`'s file, loaded (and kept for the life of the process:
    /// answers and the file index point into it) on first use.
    fn get(&mut self, mi: usize) -> Option<&'static Binary<'static>> {
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
            // Mapped for the life of the process: the index points into it.
            let data = crate::symbols::Mapped::open(path)?.leak();
            let b = Binary::load(std::path::Path::new(&m.path), data).ok()?;
            // A file replaced since it was loaded would lie.
            let mut hex = [0u8; 80];
            let want = m.build_id_hex(&mut hex);
            if !want.is_empty() && b.build_id.as_deref().map(str::as_bytes) != Some(want) {
                return None;
            }
            Some(&*Box::leak(Box::new(b)))
        })
        .as_ref()
        .copied()
    }

    /// Resolves new addresses into the cache and builds the answer: every
    /// address resolved so far, so a later dump (another M's section) often
    /// finds all it needs without asking.
    /// Resolves what the cache lacks of `addrs`.
    fn resolve(&mut self, addrs: &[usize]) {
        let mods = modules::modules();
        for &addr in addrs {
            if self.addr_cache.contains_key(&addr) {
                continue;
            }
            let mut found = (Vec::new(), 0usize);
            if let Some(mi) = mods.iter().position(|m| m.contains(addr))
                && let Some(b) = self.get(mi)
            {
                let base = mods[mi].base;
                let probe = addr.wrapping_sub(base) as u64;
                if let Some((start, _)) = b.symbol(probe) {
                    found.1 = (start as usize).wrapping_add(base);
                }
                found.0 = b.frames(probe);
            }
            self.addr_cache.insert(addr, found);
            PROGRESS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An answer with everything resolved so far.
    fn answer(&self) -> Answer {
        let mut a = Answer::default();
        for (&addr, (locs, entry)) in &self.addr_cache {
            let lo = a.frames.len() as u32;
            for l in locs {
                let function = a.push_str(l.function.as_deref().unwrap_or(""));
                let file = a.push_str(l.file.as_deref().unwrap_or(""));
                a.frames.push(Frame {
                    function,
                    file,
                    line: l.line,
                });
            }
            a.addrs.push(addr);
            a.spans.push((lo, a.frames.len() as u32, *entry));
        }
        for (&key, found) in &self.site_cache {
            // Not found: empty strings, so the answer still covers it.
            let (function, path) = found.as_ref().map_or(("", ""), |(f, p)| (f, p));
            let f = a.push_str(function);
            let p = a.push_str(path);
            a.sites.push((key, f, p));
        }
        a
    }
}

/// `CLOCK_MONOTONIC` in ns (async-signal-safe).
fn now_ns() -> u64 {
    crate::clock::now_ns(libc::CLOCK_MONOTONIC)
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
