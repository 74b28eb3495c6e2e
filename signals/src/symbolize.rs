//! Addresses to functions and `file:line` from an ELF file's debug info,
//! inlined calls expanded: what [`crate::resolve`] does in the crashing
//! process and `gort-symbolize` does offline.
//!
//! # Not async-signal-safe
//!
//! Everything here allocates and parses. It runs on the symbolizer thread
//! ([`crate::resolve`]) or in the offline tool, never in a signal handler.
//!
//! # What a lookup gives
//!
//! [`Binary::frames`] takes a *probe* address in the file's own address
//! space (a module offset: run-time address − load bias; for a return
//! address, the call: `ra − 1`) and returns the source frames at that
//! instruction, innermost first: the functions inlined there, then the
//! function the instruction physically belongs to (the last one). Names
//! come from DWARF, else from the ELF symbol table (`.symtab`, else
//! `.dynsym`); `file:line` only from DWARF line tables (`debug =
//! "line-tables-only"` or more).

use addr2line::gimli;
use object::{
    Object, ObjectSection, ObjectSegment, ObjectSymbol, ObjectSymbolTable, SegmentFlags, SymbolKind,
};
use std::path::{Path, PathBuf};

type Reader<'a> = gimli::EndianSlice<'a, gimli::RunTimeEndian>;

/// One source frame at an address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    /// Demangled function name (Rust paths without the hash).
    pub function: Option<String>,
    /// Source file, as the compiler recorded it (absolute for the crate
    /// being built, `/rustc/<hash>/library/...` for std).
    pub file: Option<String>,
    /// Line (0 when the line table has none for the address).
    pub line: u32,
    /// Column (0 when unknown).
    pub column: u32,
}

/// An ELF file loaded for symbolization.
pub struct Binary<'a> {
    /// Where it was read from.
    pub path: PathBuf,
    /// GNU build-id, lowercase hex.
    pub build_id: Option<String>,
    /// `[start, end)` of executable sections (file virtual addresses).
    text: Vec<(u64, u64)>,
    dwarf: Option<addr2line::Context<Reader<'a>>>,
    /// The same sections, for walking line programs (addr2line keeps its
    /// own copy private).
    sections: Option<gimli::Dwarf<Reader<'a>>>,
    /// Function symbols `(start, size, name)` sorted by start, one per start
    /// (a global name preferred).
    symbols: Vec<(u64, u64, &'a str)>,
    /// Whether the Rust symbols are v0-mangled (`_R…`, which demangle to
    /// `{closure#0}`) rather than legacy (`_ZN…`, `{{closure}}`): names
    /// from DWARF are spelled to match.
    v0: bool,
}

impl core::fmt::Debug for Binary<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Binary")
            .field("path", &self.path)
            .field("build_id", &self.build_id)
            .field("dwarf", &self.dwarf.is_some())
            .field("symbols", &self.symbols.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Binary<'a> {
    /// Parses `data` (the contents of `path`). Debug sections are parsed
    /// lazily, per compilation unit, as lookups need them.
    pub fn load(path: &Path, data: &'a [u8]) -> Result<Binary<'a>, String> {
        let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
        // Executable sections, not segments: on aarch64 the first
        // executable segment also covers the ELF header and `.rodata`.
        let mut text: Vec<(u64, u64)> = file
            .sections()
            .filter(|s| s.kind() == object::SectionKind::Text && s.size() > 0)
            .map(|s| (s.address(), s.address().saturating_add(s.size())))
            .collect();
        // No section headers: fall back to the executable segments.
        let no_sections = text.is_empty();
        for seg in file.segments().filter(|_| no_sections) {
            if let SegmentFlags::Elf { p_flags } = seg.flags()
                && p_flags & object::elf::PF_X != 0
                && seg.size() > 0
            {
                text.push((seg.address(), seg.address().saturating_add(seg.size())));
            }
        }
        let dwarf = if file.section_by_name(".debug_info").is_some() {
            let endian = if file.is_little_endian() {
                gimli::RunTimeEndian::Little
            } else {
                gimli::RunTimeEndian::Big
            };
            let load = |id: gimli::SectionId| -> Result<Reader<'a>, String> {
                let bytes: &'a [u8] = match file.section_by_name(id.name()) {
                    Some(s) => {
                        if s.compressed_file_range()
                            .is_ok_and(|r| r.format != object::CompressionFormat::None)
                        {
                            return Err(format!(
                                "{} is compressed, which gort does not read; \
                                 decompress with `objcopy --decompress-debug-sections`",
                                id.name()
                            ));
                        }
                        s.data().map_err(|e| format!("{}: {e}", id.name()))?
                    }
                    None => &[],
                };
                Ok(gimli::EndianSlice::new(bytes, endian))
            };
            let ctx = addr2line::Context::from_dwarf(gimli::Dwarf::load(load)?)
                .map_err(|e| format!("unreadable debug info: {e}"))?;
            Some((ctx, gimli::Dwarf::load(load)?))
        } else {
            None
        };
        let (dwarf, sections) = match dwarf {
            Some((c, s)) => (Some(c), Some(s)),
            None => (None, None),
        };
        let symbols = function_symbols(&file);
        let count = |prefix: &str| symbols.iter().filter(|s| s.2.starts_with(prefix)).count();
        let v0 = count("_R") > count("_ZN");
        Ok(Binary {
            path: path.to_path_buf(),
            build_id: build_id_hex(&file),
            text,
            dwarf,
            sections,
            symbols,
            v0,
        })
    }

    /// Whether it has DWARF (`.debug_info`).
    pub fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    /// Whether it has a function symbol table.
    pub fn has_symbols(&self) -> bool {
        !self.symbols.is_empty()
    }

    /// Whether `addr` (a file virtual address) is in an executable section.
    pub fn is_code(&self, addr: u64) -> bool {
        self.text.iter().any(|&(lo, hi)| addr >= lo && addr < hi)
    }

    /// The source frames at `probe`, innermost (inlined) first, the
    /// physical function last; empty when nothing is known. See the module
    /// docs.
    pub fn frames(&self, probe: u64) -> Vec<Loc> {
        let mut frames: Vec<Loc> = Vec::new();
        if !self.is_code(probe) {
            return frames;
        }
        if let Some(ctx) = &self.dwarf
            && let Ok(mut it) = ctx.find_frames(probe).skip_all_loads()
        {
            while let Ok(Some(f)) = it.next() {
                let function = f
                    .function
                    .as_ref()
                    .and_then(|n| n.raw_name().ok())
                    .map(|raw| demangle(&raw))
                    .map(|n| if self.v0 { n } else { legacy_closures(n) });
                let (file, line, column) = match f.location {
                    Some(l) => (
                        l.file.map(str::to_string),
                        l.line.unwrap_or(0),
                        l.column.unwrap_or(0),
                    ),
                    None => (None, 0, 0),
                };
                frames.push(Loc {
                    function,
                    file,
                    line,
                    column,
                });
            }
        }
        // The outermost frame is the real function: the symbol table names
        // it, and the same way at every debug-info level (DWARF without
        // linkage names, `debug = "limited"` or `"line-tables-only"`, has
        // names of its own: `{impl#3}` for `<T as Trait>`), or when DWARF
        // does not name it at all (or there is no DWARF).
        match frames.last_mut() {
            Some(Loc { function: f, .. }) => {
                if let Some((_, name)) = self.symbol(probe) {
                    *f = Some(demangle(name));
                }
            }
            None => {
                if let Some((_, name)) = self.symbol(probe) {
                    frames.push(Loc {
                        function: Some(demangle(name)),
                        ..Loc::default()
                    });
                }
            }
        }
        frames
    }

    /// Which compilation units' line tables name each source file (see
    /// [`FileIndex`]). One pass over every unit's line program header, no
    /// rows: slow in a big debug build (tens of ms), so done once, off the
    /// dump's path. `poll` runs between units (the symbolizer thread
    /// answers a dump's addresses there).
    pub fn file_index(&self, poll: &mut dyn FnMut()) -> FileIndex {
        let mut index = FileIndex::default();
        let Some(dwarf) = self.sections.as_ref() else {
            return index;
        };
        let mut units = dwarf.units();
        while let Ok(Some(header)) = units.next() {
            poll();
            let Some(offset) = header.debug_info_offset() else {
                continue;
            };
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            let Some(program) = unit.line_program.as_ref() else {
                continue;
            };
            let u = index.units.len() as u32;
            index.units.push(offset);
            let hdr = program.header();
            // File indexes (DWARF 5 counts from 0, earlier versions from 1).
            for i in 0..=hdr.file_names().len() as u64 {
                let name = hdr.file(i).and_then(|f| {
                    let r = dwarf.attr_string(&unit, f.path_name()).ok()?;
                    Some(base_name_hash(r.slice()))
                });
                if let Some(h) = name {
                    index.entries.push((h, u, i as u32));
                }
            }
        }
        index.entries.sort_unstable();
        index.entries.dedup();
        index.entries.shrink_to_fit();
        index
    }

    /// For each spawn site, the function that holds it and the site's full
    /// path, from the line tables; `None` where not found. Reads the rows
    /// of the units that `index` says name the site's file, each unit once
    /// for all sites; `poll` runs between units.
    ///
    /// Go prints the function that executed the `go` statement. Code of a
    /// spawn site's line may also belong to closures written on it (the
    /// G's own body, `.map(|_| go(|| ...))`), inlined or not; so:
    ///
    /// 1. rows at the site's exact column (the call expression, where
    ///    `Location::caller` points) name the calling function directly:
    ///    the innermost source frame at that line and column;
    /// 2. without a column (an offline dump has none) or such a row (the
    ///    call inlined away), the outermost function at that line, in the
    ///    inlined chain of each address and then across addresses (a
    ///    closure's name extends its parent's, so the shortest).
    pub fn spawners(
        &self,
        index: &FileIndex,
        sites: &[Site<'_>],
        poll: &mut dyn FnMut(),
    ) -> Vec<Option<(String, String)>> {
        let mut found: Vec<(Vec<u64>, Vec<u64>)> = vec![(Vec::new(), Vec::new()); sites.len()];
        if let Some(dwarf) = self.sections.as_ref() {
            // (unit, site) pairs worth reading, by unit.
            let mut wanted: Vec<(u32, usize)> = Vec::new();
            for (si, site) in sites.iter().enumerate() {
                let h = base_name_hash(site.file.as_bytes());
                let lo = index.entries.partition_point(|e| e.0 < h);
                for e in index.entries[lo..].iter().take_while(|e| e.0 == h) {
                    wanted.push((e.1, si));
                }
            }
            wanted.sort_unstable();
            wanted.dedup();
            for group in wanted.chunk_by(|a, b| a.0 == b.0) {
                poll();
                let Some(&offset) = index.units.get(group[0].0 as usize) else {
                    continue;
                };
                if let Some(unit) = dwarf
                    .debug_info
                    .header_from_offset(offset)
                    .ok()
                    .and_then(|h| dwarf.unit(h).ok())
                {
                    let sites_here: Vec<usize> = group.iter().map(|&(_, si)| si).collect();
                    rows_at_sites(dwarf, &unit, sites, &sites_here, &mut found);
                }
            }
        }
        found
            .into_iter()
            .zip(sites)
            .map(|((exact, at_line), site)| {
                self.caller_at(&exact, site, true)
                    .or_else(|| self.caller_at(&at_line, site, false))
            })
            .collect()
    }

    /// The spawner among `addrs` (see [`Binary::spawners`]): with
    /// `exact`, the innermost frame at the site's line and column;
    /// otherwise the shortest outermost frame at its line.
    fn caller_at(&self, addrs: &[u64], site: &Site<'_>, exact: bool) -> Option<(String, String)> {
        addrs
            .iter()
            .filter_map(|&addr| {
                let mut at = self.frames(addr).into_iter().filter(|l| {
                    l.line == site.line
                        && (!exact || l.column == site.column)
                        && l.file
                            .as_deref()
                            .is_some_and(|f| path_ends_with(f, site.file))
                });
                let l = if exact { at.next() } else { at.next_back() }?;
                Some((l.function?, l.file.unwrap_or_else(|| site.file.to_string())))
            })
            .min_by_key(|(f, _)| f.len())
    }

    /// The function symbol containing `addr` (a sizeless one: the nearest
    /// before it): its start and raw name.
    pub fn symbol(&self, addr: u64) -> Option<(u64, &'a str)> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= addr)
            .checked_sub(1)?;
        let (start, size, name) = self.symbols[i];
        if size != 0 && addr - start >= size {
            return None;
        }
        Some((start, name))
    }
}

/// A line table's file as a path: its directory (relative ones under the
/// unit's compilation directory), then its name.
fn file_path<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    unit: &gimli::Unit<Reader<'a>>,
    hdr: &gimli::LineProgramHeader<Reader<'a>>,
    f: &gimli::FileEntry<Reader<'a>>,
) -> Option<String> {
    let s = |v| {
        dwarf
            .attr_string(unit, v)
            .ok()
            .map(|r| String::from_utf8_lossy(r.slice()).into_owned())
    };
    let name = s(f.path_name())?;
    if name.starts_with('/') {
        return Some(name);
    }
    let mut path = f.directory(hdr).and_then(s).unwrap_or_default();
    if !path.starts_with('/')
        && let Some(comp) = unit
            .comp_dir
            .map(|r| String::from_utf8_lossy(r.slice()).into_owned())
    {
        path = if path.is_empty() {
            comp
        } else {
            format!("{comp}/{path}")
        };
    }
    Some(if path.is_empty() {
        name
    } else {
        format!("{path}/{name}")
    })
}

/// A spawn site to look up: `Location::file()` (relative to the workspace
/// for a local crate, absolute for a registry one), line and column (0:
/// unknown).
#[derive(Clone, Copy, Debug)]
pub struct Site<'s> {
    /// The file as `Location::file()` names it.
    pub file: &'s str,
    /// Its line.
    pub line: u32,
    /// Its column (`Location::column()`), 0 when unknown.
    pub column: u32,
}

/// Which compilation units name a source file in their line tables (see
/// [`Binary::file_index`]): `(hash of the file's base name, unit, file
/// index)` sorted, and each unit's offset. About 16 bytes per file of each
/// unit's table.
#[derive(Debug, Default)]
pub struct FileIndex {
    entries: Vec<(u64, u32, u32)>,
    units: Vec<gimli::DebugInfoOffset<usize>>,
}

impl FileIndex {
    /// Units indexed.
    pub fn units(&self) -> usize {
        self.units.len()
    }
}

/// FNV-1a of a path's last component.
fn base_name_hash(path: &[u8]) -> u64 {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    base.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads `unit`'s rows once and adds, for each site of `sites_here` whose
/// file the unit names, the addresses at its line (`found[site].1`, at most
/// 64) and those at its line and column (`found[site].0`).
fn rows_at_sites<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    unit: &gimli::Unit<Reader<'a>>,
    sites: &[Site<'_>],
    sites_here: &[usize],
    found: &mut [(Vec<u64>, Vec<u64>)],
) {
    let Some(program) = unit.line_program.clone() else {
        return;
    };
    let hdr = program.header();
    // (file index, site) pairs whose full path matches.
    let mut files: Vec<(u64, usize)> = Vec::new();
    for i in 0..=hdr.file_names().len() as u64 {
        let Some(path) = hdr.file(i).and_then(|f| file_path(dwarf, unit, hdr, f)) else {
            continue;
        };
        for &si in sites_here {
            if path_ends_with(&path, sites[si].file) {
                files.push((i, si));
            }
        }
    }
    if files.is_empty() {
        return;
    }
    let mut rows = program.rows();
    while let Ok(Some((_, row))) = rows.next_row() {
        if row.end_sequence() {
            continue;
        }
        let Some(line) = row.line().map(|l| l.get()) else {
            continue;
        };
        for &(fi, si) in &files {
            if row.file_index() != fi || u64::from(sites[si].line) != line {
                continue;
            }
            let column = match row.column() {
                gimli::ColumnType::LeftEdge => 0,
                gimli::ColumnType::Column(c) => c.get(),
            };
            record(&mut found[si], &sites[si], row.address(), column);
        }
    }
    // A call inlined whole leaves no row at its column, often none at its
    // line (its instructions are the callee's lines; rows there may be the
    // G's own closure): the inlined subroutines called from the site stand
    // for it, with the call's line and column as their own.
    files.retain(|&(_, si)| found[si].0.is_empty());
    if !files.is_empty() {
        inlined_calls_at_sites(dwarf, unit, sites, &files, found);
    }
}

/// Records code of `site`'s line at `addr` (in `column`): among the
/// addresses at its line and, if the column is the site's, at its column
/// too (at most 64 of each).
fn record(found: &mut (Vec<u64>, Vec<u64>), site: &Site<'_>, addr: u64, column: u64) {
    let (exact, at_line) = found;
    if site.column != 0 && column == u64::from(site.column) && exact.len() < 64 {
        exact.push(addr);
    }
    if at_line.len() < 64 {
        at_line.push(addr);
    }
}

/// Adds to `found` an address of each inlined subroutine called from one
/// of the sites (`files`: (file index, site) pairs of this unit), as
/// [`rows_at_sites`] does for rows.
fn inlined_calls_at_sites<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    unit: &gimli::Unit<Reader<'a>>,
    sites: &[Site<'_>],
    files: &[(u64, usize)],
    found: &mut [(Vec<u64>, Vec<u64>)],
) {
    let mut entries = unit.entries();
    while let Ok(Some(entry)) = entries.next_dfs() {
        if entry.tag() != gimli::DW_TAG_inlined_subroutine {
            continue;
        }
        let num = |at| match entry.attr_value(at) {
            Some(gimli::AttributeValue::FileIndex(v)) => Some(v),
            Some(v) => v.udata_value(),
            None => None,
        };
        let (Some(file), Some(line)) = (num(gimli::DW_AT_call_file), num(gimli::DW_AT_call_line))
        else {
            continue;
        };
        let column = num(gimli::DW_AT_call_column).unwrap_or(0);
        for &(fi, si) in files {
            if fi != file || u64::from(sites[si].line) != line {
                continue;
            }
            let Some(addr) = dwarf
                .die_ranges(unit, entry)
                .ok()
                .and_then(|mut r| r.next().ok().flatten())
                .map(|r| r.begin)
            else {
                continue;
            };
            record(&mut found[si], &sites[si], addr, column);
        }
    }
}

/// Whether `path` is `suffix` or ends with `/suffix`.
fn path_ends_with(path: &str, suffix: &str) -> bool {
    path == suffix
        || path
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('/'))
}

/// A symbol name demangled the way dumps print it (`{:#}`: no hash); C
/// names as they are.
pub fn demangle(raw: &str) -> String {
    match rustc_demangle::try_demangle(raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.to_string(),
    }
}

/// A name from DWARF with closures spelled as a legacy-mangled symbol
/// table spells them (`{{closure}}`): DWARF names without a linkage name
/// (`debug = "limited"` or `"line-tables-only"`) say `{closure#0}`, so the
/// same closure would print two ways within one dump. (With v0 mangling
/// both say `{closure#0}`: nothing to do.)
fn legacy_closures(name: String) -> String {
    if !name.contains("{closure") {
        return name;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name.as_str();
    // `{closure#N}` (the function) and `{closure_env#N}` (its type, in
    // generic arguments).
    while let Some(at) = rest.find("{closure") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + "{closure".len()..];
        let num = tail
            .strip_prefix('#')
            .or_else(|| tail.strip_prefix("_env#"))
            .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()));
        let digits = num.map_or(0, |t| t.bytes().take_while(u8::is_ascii_digit).count());
        match num {
            Some(t) if t.as_bytes().get(digits) == Some(&b'}') => {
                out.push_str("{{closure}}");
                rest = &t[digits + 1..];
            }
            _ => {
                out.push_str("{closure");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Function symbols of `.symtab`, else `.dynsym`: see [`Binary::symbols`].
fn function_symbols<'a>(file: &object::File<'a>) -> Vec<(u64, u64, &'a str)> {
    let mut v: Vec<(u64, u64, bool, &'a str)> = Vec::new();
    let table = file.symbol_table().or_else(|| file.dynamic_symbol_table());
    for s in table.iter().flat_map(|t| t.symbols()) {
        if s.kind() != SymbolKind::Text || !s.is_definition() {
            continue;
        }
        if let Ok(name) = s.name()
            && !name.is_empty()
        {
            v.push((s.address(), s.size(), !s.is_global(), name));
        }
    }
    // Per start: global first, then the largest size.
    v.sort_unstable_by(|a, b| (a.0, a.2, b.1).cmp(&(b.0, b.2, a.1)));
    v.dedup_by_key(|s| s.0);
    v.into_iter().map(|(a, n, _, name)| (a, n, name)).collect()
}

/// The GNU build-id of `file`, lowercase hex.
pub fn build_id_hex(file: &object::File<'_>) -> Option<String> {
    let id = file.build_id().ok()??;
    if id.is_empty() {
        return None;
    }
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// [`is_runtime_function`] for a source frame, whose file also tells: DWARF
/// without linkage names (`debug = "limited"` or `"line-tables-only"`)
/// names inlined functions without their path (`catch_unwind<..>` for
/// `std::panicking::catch_unwind`), so an unqualified name is the
/// runtime's glue when its file is one of std's that the glue lives in.
pub fn is_runtime_frame(name: &str, file: &str) -> bool {
    const GLUE_FILES: &[&str] = &[
        "/library/std/src/panicking.rs",
        "/library/std/src/panic.rs",
        "/library/core/src/panic/unwind_safe.rs",
        "/library/core/src/ops/function.rs",
    ];
    let path = name.split('<').next().unwrap_or(name);
    is_runtime_function(name)
        || (!path.contains("::") && GLUE_FILES.iter().any(|f| file.ends_with(f)))
}

/// Whether a source frame belongs to the runtime or to the glue between it
/// and the user's closure (hidden below `GORT_TRACEBACK=system`).
pub fn is_runtime_function(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "scheduler::",
        "arch::",
        "signals::",
        "runtime::join::",
        "<runtime::join::",
        "std::panicking::",
        "std::panic::catch_unwind",
        "__rust_try",
        "<core::panic::unwind_safe::AssertUnwindSafe",
        // The same glue as DWARF without linkage names calls it.
        "core::panic::unwind_safe::",
        "core::ops::function::FnOnce::call_once",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::{is_runtime_frame, legacy_closures};

    #[test]
    fn closures_are_spelled_as_the_symbol_table_spells_them() {
        let n = |s: &str| legacy_closures(s.to_string());
        assert_eq!(
            n("a::b::{closure#0}::{closure#12}"),
            "a::b::{{closure}}::{{closure}}"
        );
        assert_eq!(n("a::b::{{closure}}"), "a::b::{{closure}}");
        assert_eq!(n("a::{closure#x}"), "a::{closure#x}");
        assert_eq!(n("a::{closure#"), "a::{closure#");
        assert_eq!(n("x"), "x");
        assert_eq!(
            n("catch_unwind<(), a::{closure_env#0}<b::{closure_env#1}>>"),
            "catch_unwind<(), a::{{closure}}<b::{{closure}}>>"
        );
        assert_eq!(n("a::{closure_env#}"), "a::{closure_env#}");
    }

    #[test]
    fn unqualified_glue_is_told_by_its_file() {
        let std_panicking = "/rustc/0123/library/std/src/panicking.rs";
        assert!(is_runtime_frame(
            "catch_unwind<(), x::{{closure}}>",
            std_panicking
        ));
        assert!(is_runtime_frame("std::panicking::catch_unwind", ""));
        // A user's function of the same name elsewhere stays.
        assert!(!is_runtime_frame(
            "catch_unwind<u8>",
            "/src/app/src/main.rs"
        ));
        assert!(!is_runtime_frame("app::catch_unwind", std_panicking));
    }
}
