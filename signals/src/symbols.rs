//! The symbol table the signal handler reads: built once at start-up (off
//! the critical path), then looked up by binary search.
//!
//! # Async-signal-safety
//!
//! [`lookup`], [`is_ready`] and [`symbol_count`] may run in a signal
//! handler. They load one pointer ([`OnceLock::get`], an acquire load),
//! binary-search a sorted slice and slice a string: no allocation, no lock,
//! no system call, no lazily initialised state (no `thread_local!`, no
//! `LazyLock`), no panicking path (every index is checked). Until [`init`]
//! has finished they answer "nothing" (`None`, `false`, 0), also on the
//! thread that is running [`init`] when the signal arrives.
//!
//! [`init`] allocates, opens and maps files, and demangles: call it at
//! start-up (the crate's `init` does it on a helper thread), never from a
//! signal handler.
//!
//! # What the table holds
//!
//! For each module from [`modules::init`] (the executable first, then the
//! shared objects), the function symbols of its ELF file: `.symtab` when
//! the file has one, else `.dynsym` (all a stripped library has). Taken are
//! `STT_FUNC`/`STT_GNU_IFUNC` symbols and `STT_NOTYPE` labels defined in an
//! executable section (hand-written assembly often has only those), minus
//! assembler mapping symbols (`$x`, `$d`, …) and local labels (`.L…`).
//! Names are demangled in `{:#}` form (Rust paths without the hash; C names
//! as they are).
//!
//! Everything lives in one table sorted by runtime address (`st_value +`
//! the module's load bias) and one string arena, so a lookup is a single
//! binary search whatever the number of modules. Aliases (several symbols
//! at one address) keep one name: a global one before a local one, then one
//! with a size. A symbol without a size (an assembly label) extends to the
//! next symbol of its module, or to the end of its executable segment;
//! a sizeless label inside a sized function is dropped (the function is the
//! better name).
//!
//! A module whose file on disk no longer has the build-id of the loaded
//! one (upgraded since) is skipped rather than misnamed.
//!
//! Stripped modules contribute what their `.dynsym` has (exported names
//! only) or nothing; their frames still print `module+0xoffset`, which
//! `gort-symbolize` (or `addr2line`) resolves offline with the debug info of
//! the same build (docs/crash-format.md).

use crate::modules::{self, Module};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolFlags, SymbolSection};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// One function: `[start, start + len)` at runtime addresses; its name is
/// `names[name_off..name_off + name_len]`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: usize,
    len: u32,
    name_off: u32,
    name_len: u32,
}

/// The published table.
///
/// # Safety (invariants relied on by [`lookup`])
///
/// `entries` is sorted by `start`, starts are distinct, and every
/// `name_off..name_off + name_len` is in bounds of `names` on a `char`
/// boundary. (Nothing `unsafe` depends on this — `lookup` re-checks with
/// `str::get` — but a broken invariant would print wrong names.)
#[derive(Debug)]
struct Table {
    entries: Vec<Entry>,
    names: String,
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// A symbol found for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Demangled name.
    pub name: &'static str,
    /// Offset of the address from the symbol's start.
    pub offset: usize,
}

/// Builds the table (once; later calls return at once, a concurrent call
/// waits for the first). Allocates: never call from a signal handler.
pub fn init() {
    TABLE.get_or_init(build);
}

/// Whether the table is built. Async-signal-safe.
pub fn is_ready() -> bool {
    TABLE.get().is_some()
}

/// Number of symbols in the table (0 before [`init`] has finished).
/// Async-signal-safe.
pub fn symbol_count() -> usize {
    TABLE.get().map_or(0, |t| t.entries.len())
}

/// The function containing `pc`, or `None` (table not built yet, address
/// in no known function). Async-signal-safe: see the module docs.
///
/// For a return address, look up `pc - 1` (the call instruction), as the
/// dump does.
pub fn lookup(pc: usize) -> Option<Symbol> {
    let t = TABLE.get()?;
    // Entries with start <= pc are entries[..n].
    let n = t.entries.partition_point(|e| e.start <= pc);
    // The nearest one nearly always contains pc. A few steps back covers a
    // function nested in a larger one (rare, in assembly), still in bounded
    // time.
    let first = n.saturating_sub(4);
    let e = t.entries[first..n]
        .iter()
        .rev()
        .find(|e| pc - e.start < e.len as usize)?;
    let off = e.name_off as usize;
    let name = t.names.get(off..off + e.name_len as usize)?;
    Some(Symbol {
        name,
        offset: pc - e.start,
    })
}

/// A symbol picked from a module's ELF file, name not yet demangled.
struct Candidate<'data> {
    start: usize,
    /// Size from the file; 0 for labels (bounded when the module is done).
    size: usize,
    /// Preference among aliases: lower wins.
    rank: u8,
    name: &'data str,
    /// Run-time end of the symbol's section: a label never runs past it
    /// (on aarch64, `.rodata` can share the executable segment with `.fini`).
    sec_end: usize,
}

fn build() -> Table {
    let mut t = Table {
        entries: Vec::new(),
        names: String::new(),
    };
    for (i, m) in modules::init().iter().enumerate() {
        // The executable through /proc/self/exe: right even when the file
        // was moved or replaced since the process started.
        let path = if i == 0 || m.path.is_empty() {
            "/proc/self/exe"
        } else {
            m.path.as_str()
        };
        let Some(map) = Mapped::open(path) else {
            continue;
        };
        let Ok(file) = object::File::parse(map.bytes()) else {
            continue;
        };
        // A library upgraded (renamed over) since it was loaded: the file
        // at its path is another build, whose symbols would lie.
        if let (false, Ok(Some(id))) = (m.build_id.is_empty(), file.build_id())
            && id != m.build_id.as_slice()
        {
            continue;
        }
        add_module(&mut t, m, &file);
    }
    // Modules do not overlap and each module's entries are sorted, so this
    // only interleaves runs; starts stay distinct (deduplicated per module).
    t.entries.sort_unstable_by_key(|e| e.start);
    t.entries.dedup_by_key(|e| e.start);
    t.entries.shrink_to_fit();
    t.names.shrink_to_fit();
    t
}

/// Adds one module's function symbols to `t`.
fn add_module<'data>(t: &mut Table, m: &Module, file: &object::File<'data>) {
    // Executable sections, by index: their run-time end, 0 if not code.
    let mut exec = Vec::new();
    for s in file.sections() {
        let i = s.index().0;
        if exec.len() <= i {
            exec.resize(i + 1, 0usize);
        }
        if s.kind() == SectionKind::Text {
            let end = usize::try_from(s.address().saturating_add(s.size())).unwrap_or(usize::MAX);
            exec[i] = end.wrapping_add(m.base);
        }
    }
    let mut cands: Vec<Candidate<'data>> = Vec::new();
    let mut pick = |sym: object::Symbol<'data, '_>| {
        let SymbolSection::Section(idx) = sym.section() else {
            return;
        };
        let sec_end = exec.get(idx.0).copied().unwrap_or(0);
        if sec_end == 0 {
            return;
        }
        let SymbolFlags::Elf { st_info, .. } = sym.flags() else {
            return;
        };
        const STT_NOTYPE: u8 = 0;
        const STT_FUNC: u8 = 2;
        const STT_GNU_IFUNC: u8 = 10;
        const STB_LOCAL: u8 = 0;
        let (kind, bind) = (st_info & 0xf, st_info >> 4);
        if !matches!(kind, STT_NOTYPE | STT_FUNC | STT_GNU_IFUNC) {
            return;
        }
        let Ok(name) = sym.name() else { return };
        if name.is_empty() || name.starts_with('$') || name.starts_with(".L") {
            return;
        }
        // 32-bit targets: an address or size that does not fit is not ours.
        let (Ok(value), Ok(size)) = (usize::try_from(sym.address()), usize::try_from(sym.size()))
        else {
            return;
        };
        let start = value.wrapping_add(m.base);
        // Only code the loader actually mapped executable.
        if !m.text.iter().any(|&(lo, hi)| start >= lo && start < hi) {
            return;
        }
        let local = bind == STB_LOCAL;
        let rank = (local as u8) << 2 | ((size == 0) as u8) << 1 | (kind == STT_NOTYPE) as u8;
        cands.push(Candidate {
            start,
            size,
            rank,
            name,
            sec_end,
        });
    };
    if file.symbol_table().is_some() {
        file.symbols().for_each(&mut pick);
    } else {
        file.dynamic_symbols().for_each(&mut pick);
    }
    if cands.is_empty() {
        return;
    }
    // Aliases: the best rank first, then keep one per start with the
    // largest size of the group.
    // Equal rank: the public-looking name (`getpid` over `__getpid`), then
    // by name, so the choice does not depend on the file's order.
    let underscores = |c: &Candidate<'_>| c.name.bytes().take_while(|&b| b == b'_').count();
    cands.sort_unstable_by(|a, b| {
        (a.start, a.rank, underscores(a), a.name).cmp(&(b.start, b.rank, underscores(b), b.name))
    });
    cands.dedup_by(|later, kept| {
        if later.start == kept.start {
            kept.size = kept.size.max(later.size);
            true
        } else {
            false
        }
    });
    // Bounds: a label runs to the next symbol or its segment's end; a
    // label inside the previous sized function is dropped.
    let mut covered_to = 0usize; // end of the last sized function
    for i in 0..cands.len() {
        let c = &cands[i];
        let seg_end = m
            .text
            .iter()
            .find(|&&(lo, hi)| c.start >= lo && c.start < hi)
            .map_or(c.start, |&(_, hi)| hi)
            .min(c.sec_end.max(c.start));
        let len = if c.size > 0 {
            covered_to = covered_to.max(c.start.saturating_add(c.size));
            c.size
        } else if c.start < covered_to {
            continue;
        } else {
            let next = cands.get(i + 1).map_or(seg_end, |n| n.start.min(seg_end));
            next - c.start
        };
        let Ok(name_off) = u32::try_from(t.names.len()) else {
            return; // 4 GiB of names: keep what fits.
        };
        match rustc_demangle::try_demangle(c.name) {
            Ok(d) => {
                let _ = write!(t.names, "{d:#}");
            }
            Err(_) => t.names.push_str(c.name),
        }
        let name_len = u32::try_from(t.names.len() - name_off as usize).unwrap_or(0);
        t.entries.push(Entry {
            start: c.start,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            name_off,
            name_len,
        });
    }
}

/// A file mapped read-only for the time of one module's scan: only the
/// pages of the symbol and string tables are read, not the whole (often
/// large, debug-info laden) file.
///
/// The mapping is private and read-only. If another process truncated the
/// file while it is mapped, reading past the new end would raise SIGBUS;
/// loaded ELF files are replaced by rename (package managers, cargo), not
/// truncated in place, and a running executable cannot be opened for
/// writing at all (ETXTBSY).
pub(crate) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    pub(crate) fn open(path: &str) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path).ok()?;
        let len = usize::try_from(f.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of an open file; the
        // kernel picks the address, so nothing existing is replaced. The
        // descriptor may be closed afterwards (the mapping keeps the file).
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop` (see the
        // type's docs for the truncation caveat); the slice borrows self.
        unsafe { core::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }

    /// Keeps the mapping for the life of the process.
    pub(crate) fn leak(self) -> &'static [u8] {
        let m = core::mem::ManuallyDrop::new(self);
        // SAFETY: never unmapped now (no `drop`), so the `len` readable
        // bytes at `ptr` stay for the life of the process.
        unsafe { core::slice::from_raw_parts(m.ptr.cast::<u8>(), m.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; no slice from
        // `bytes` outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find() -> usize {
        std::hint::black_box(42)
    }

    #[test]
    fn finds_a_known_function_demangled_with_its_offset() {
        init();
        assert!(is_ready());
        assert!(symbol_count() > 100, "{}", symbol_count());
        let f = a_function_to_find as *const () as usize;
        let s = lookup(f + 1).expect("a symbol for our own function");
        assert_eq!(
            s.name, "signals::symbols::tests::a_function_to_find",
            "demangled, no hash"
        );
        assert_eq!(s.offset, 1);
        assert_eq!(lookup(f).map(|s| s.offset), Some(0));
        assert_eq!(a_function_to_find(), 42);
    }

    #[test]
    fn nothing_at_zero_or_outside_code() {
        init();
        assert_eq!(lookup(0), None);
        assert_eq!(lookup(usize::MAX), None);
        // Data is not code.
        static DATA: [u8; 64] = [0; 64];
        assert_eq!(lookup(DATA.as_ptr() as usize + 8), None);
    }

    #[test]
    fn the_table_is_sorted_and_its_names_are_in_bounds() {
        init();
        let t = TABLE.get().expect("built");
        assert!(t.entries.windows(2).all(|w| w[0].start < w[1].start));
        for e in &t.entries {
            let off = e.name_off as usize;
            let name = t.names.get(off..off + e.name_len as usize);
            assert!(name.is_some_and(|n| !n.is_empty()), "{e:?}");
            assert!(e.len > 0, "{e:?}");
        }
    }

    #[test]
    fn finds_functions_of_shared_objects() {
        init();
        // libc's exported `getpid`, found through its .dynsym at least.
        let f = libc::getpid as *const () as usize;
        let s = lookup(f).expect("a libc symbol");
        assert_eq!(s.offset, 0);
        assert!(s.name.contains("getpid"), "{}", s.name);
    }

    #[test]
    fn a_second_build_is_identical() {
        // Alias choice and bounds do not depend on hash or file order. Also
        // prints what a build costs (`--nocapture`); the cost itself is
        // measured by benchmarks, not asserted here.
        init();
        let t0 = std::time::Instant::now();
        let again = build();
        let took = t0.elapsed();
        eprintln!(
            "symbols::build: {} symbols ({} bytes of names) from {} modules in {took:?}",
            again.entries.len(),
            again.names.len(),
            modules::modules().len()
        );
        let t = TABLE.get().expect("built");
        assert_eq!(t.names, again.names);
        assert_eq!(t.entries.len(), again.entries.len());
        for (a, b) in t.entries.iter().zip(&again.entries) {
            assert_eq!(
                (a.start, a.len, a.name_off, a.name_len),
                (b.start, b.len, b.name_off, b.name_len)
            );
        }
    }
}
