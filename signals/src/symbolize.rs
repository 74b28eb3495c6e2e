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
        Ok(Binary {
            path: path.to_path_buf(),
            build_id: build_id_hex(&file),
            text,
            dwarf,
            sections,
            symbols: function_symbols(&file),
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
                    .map(|raw| demangle(&raw));
                let (file, line) = match f.location {
                    Some(l) => (l.file.map(str::to_string), l.line.unwrap_or(0)),
                    None => (None, 0),
                };
                frames.push(Loc {
                    function,
                    file,
                    line,
                });
            }
        }
        // The outermost frame is the real function: the symbol table can
        // name it when DWARF does not (or when there is no DWARF).
        match frames.last_mut() {
            Some(Loc {
                function: f @ None, ..
            }) => *f = self.symbol(probe).map(|s| demangle(s.1)),
            Some(_) => {}
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

    /// Addresses (at most 64) whose line-table rows are `line` of a file
    /// whose path ends with `file` (a spawn site's `Location::file()`: relative
    /// to the workspace for a local crate, absolute for a registry one), or
    /// Walks the line programs of the compilation units whose file
    /// tables name such a file: slow (every unit's file table is read), for
    /// the few spawn sites a dump prints.
    pub fn find_line(&self, file: &str, line: u32) -> Vec<u64> {
        let mut found = Vec::new();
        let Some(dwarf) = self.sections.as_ref() else {
            return found;
        };
        let mut units = dwarf.units();
        while let Ok(Some(header)) = units.next() {
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            let hdr = program.header();
            // File indexes (DWARF 5 counts from 0, earlier versions from 1).
            let matching: Vec<u64> = (0..=hdr.file_names().len() as u64)
                .filter(|&i| {
                    hdr.file(i)
                        .and_then(|f| file_path(dwarf, &unit, hdr, f))
                        .is_some_and(|p| path_ends_with(&p, file))
                })
                .collect();
            if matching.is_empty() {
                continue;
            }
            let mut rows = program.rows();
            while let Ok(Some((_, row))) = rows.next_row() {
                if !row.end_sequence()
                    && row.line().map(|l| l.get()) == Some(u64::from(line))
                    && matching.contains(&row.file_index())
                    && found.len() < 64
                {
                    found.push(row.address());
                }
            }
        }
        found
    }

    /// The function that holds a spawn site (`Location` file and line) and
    /// the site's full path, from the line tables.
    ///
    /// Code of that line may also belong to closures written on it
    /// (`.map(|_| go(|| ...))`), inlined or not: the spawner is the
    /// outermost function at that line, in the inlined chain of each
    /// address and then across addresses (a closure's name extends its
    /// parent's, so the shortest).
    pub fn spawner(&self, file: &str, line: u32) -> Option<(String, String)> {
        self.find_line(file, line)
            .into_iter()
            .filter_map(|addr| {
                let mut at_line = self.frames(addr).into_iter().filter(|l| {
                    l.line == line && l.file.as_deref().is_some_and(|f| path_ends_with(f, file))
                });
                let outer = at_line.next_back()?;
                Some((
                    outer.function?,
                    outer.file.unwrap_or_else(|| file.to_string()),
                ))
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
        "core::ops::function::FnOnce::call_once",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}
