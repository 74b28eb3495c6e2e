//! `gort-symbolize`: resolves the `module+0xoffset` frames of a gort crash
//! dump to functions and `file:line`, offline, with the debug info of the
//! same build.
//!
//! A dump names every frame twice: a function from the start-up symbol
//! table (`?` when the module is stripped) and `<module path>+0x<offset>`,
//! the offset being the module's file virtual address. The dump ends with a
//! module list (`module <path> base=0x… build-id=<hex>`). This tool copies
//! the dump to stdout and appends to each line holding such a token
//! ` [function at file:line]` — with inlined frames, innermost first,
//! joined by ` <- ` — using DWARF through `addr2line`, or the ELF symbol
//! table when a binary has no DWARF.
//!
//! Binaries are matched to the dump's modules by GNU build-id when both
//! have one (so a separate debug file, `objcopy --only-keep-debug`, works
//! under any name), else by file name. A module with no `--binary` is
//! looked for at its own path on this machine, used only if its build-id
//! matches. Frames of modules nothing matches are left as they are.
//!
//! This is an offline tool: it allocates, reads whole files and is not
//! async-signal-safe in any way.

use addr2line::gimli;
use object::{
    Object, ObjectSection, ObjectSegment, ObjectSymbol, ObjectSymbolTable, SegmentFlags, SymbolKind,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: gort-symbolize [--binary PATH]... [DUMP]

Reads a gort crash dump from DUMP (or stdin) and prints it with every
`<module>+0x<offset>` frame followed by ` [function at file:line]`
(inlined frames innermost first, joined by ` <- `).

  --binary PATH   an executable or shared object with debug info (or its
                  separate debug file) of the build that crashed; may be
                  repeated. Matched to the dump's modules by build-id when
                  both have one, else by file name. Without it, modules are
                  looked for at the paths the dump names (build-id checked).
  -h, --help      this text

The first frame of a running goroutine (and of `goroutine 0`) is the exact
pc; the other frames are return addresses and resolve at offset-1, the call.
Frames that match no binary are left as they are; what could not be matched
is reported on stderr. Exit status: 0 on success (even if some frames stay
unresolved), 1 when the dump or a --binary cannot be read, 2 on bad usage.
";

/// Errors that stop the tool: message for stderr and exit status.
struct Fatal(String, u8);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(msg, code)) => {
            eprintln!("gort-symbolize: {msg}");
            if code == 2 {
                eprintln!("(try --help)");
            }
            ExitCode::from(code)
        }
    }
}

struct Args {
    binaries: Vec<PathBuf>,
    dump: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, Fatal> {
    let mut args = Args {
        binaries: Vec::new(),
        dump: None,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-h" | "--help") => return Ok(None),
            Some("--binary" | "-b") => match it.next() {
                Some(p) => args.binaries.push(p.into()),
                None => return Err(Fatal("--binary needs a path".into(), 2)),
            },
            Some(s) if s.starts_with("--binary=") => {
                args.binaries.push(s["--binary=".len()..].into());
            }
            Some("-") if args.dump.is_none() => args.dump = Some("-".into()),
            Some(s) if s.starts_with('-') && s != "-" => {
                return Err(Fatal(format!("unknown option {s}"), 2));
            }
            _ if args.dump.is_none() => args.dump = Some(a.into()),
            _ => {
                return Err(Fatal(
                    format!("more than one dump given ({})", Path::new(&a).display()),
                    2,
                ));
            }
        }
    }
    Ok(Some(args))
}

fn run() -> Result<(), Fatal> {
    let Some(args) = parse_args()? else {
        print!("{USAGE}");
        return Ok(());
    };
    let dump = read_dump(args.dump.as_deref())?;
    let modules = parse_module_list(&dump);

    // Which modules the frames name, so only those are looked for.
    let mut tokens_seen = 0usize;
    let mut wanted = vec![false; modules.len()];
    let mut bare: Vec<String> = Vec::new(); // prefixes, when there is no module list
    for line in dump.lines() {
        for t in tokens(line) {
            tokens_seen += 1;
            match module_for(&modules, t.prefix) {
                Some(i) => wanted[i] = true,
                // Without a module list, a prefix that reads as a file
                // name (not a Rust path such as a function line's) may
                // name a --binary.
                None if modules.is_empty()
                    && file_like(t.prefix)
                    && !bare.iter().any(|b| b == t.prefix) =>
                {
                    bare.push(t.prefix.to_string());
                }
                None => {}
            }
        }
    }
    if tokens_seen == 0 {
        eprintln!("gort-symbolize: no <module>+0x<offset> frames in the dump; copied unchanged");
    }
    if modules.is_empty() && tokens_seen > 0 {
        eprintln!(
            "gort-symbolize: the dump has no module list (`module <path> base=… build-id=…`): \
             matching frames to binaries by file name only"
        );
    }

    // Explicit binaries: every one must load.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for p in &args.binaries {
        let data =
            std::fs::read(p).map_err(|e| Fatal(format!("{}: cannot read: {e}", p.display()), 1))?;
        files.push((p.clone(), data));
    }
    let n_explicit = files.len();
    // Implicit: the dump's own paths, for wanted modules no explicit binary
    // matches by build-id or name. Build-ids are checked after parsing.
    {
        let explicit_ids: Vec<Option<String>> = files
            .iter()
            .map(|(_, d)| {
                object::File::parse(&**d)
                    .ok()
                    .and_then(|f| build_id_hex(&f))
            })
            .collect();
        for (i, m) in modules.iter().enumerate() {
            let covered =
                args.binaries
                    .iter()
                    .zip(&explicit_ids)
                    .any(|(p, id)| match (&m.build_id, id) {
                        (Some(a), Some(b)) => a == b,
                        _ => basename(&p.to_string_lossy()) == basename(&m.path),
                    });
            if wanted[i]
                && !covered
                && Path::new(&m.path).is_file()
                && let Ok(data) = std::fs::read(&m.path)
            {
                files.push((PathBuf::from(&m.path), data));
            }
        }
    }

    let mut bins: Vec<Binary<'_>> = Vec::new();
    for (i, (path, data)) in files.iter().enumerate() {
        match Binary::load(path, data) {
            Ok(b) => bins.push(b),
            Err(e) if i < n_explicit => {
                return Err(Fatal(format!("{}: {e}", path.display()), 1));
            }
            Err(e) => eprintln!(
                "gort-symbolize: {} (the dump's path for it): {e}; not used",
                path.display()
            ),
        }
    }

    // Module -> binary.
    let mut binary_of: Vec<Option<usize>> = vec![None; modules.len()];
    let mut used = vec![false; bins.len()];
    for (mi, m) in modules.iter().enumerate() {
        binary_of[mi] = match_binary(m, &bins);
        if let Some(bi) = binary_of[mi] {
            used[bi] = true;
        } else if wanted[mi] {
            eprintln!(
                "gort-symbolize: no binary for {} (build-id {}): its frames are left as they \
                 are; pass --binary with the matching build",
                m.path,
                m.build_id.as_deref().unwrap_or("none")
            );
        }
    }
    // Bare prefixes (no module list): by file name.
    let mut binary_of_bare: HashMap<&str, usize> = HashMap::new();
    for b in &bare {
        if let Some(bi) = bins.iter().position(|x| x.name == basename(b)) {
            used[bi] = true;
            binary_of_bare.insert(b.as_str(), bi);
        } else {
            eprintln!(
                "gort-symbolize: no binary named {}: its frames are left as they are",
                basename(b)
            );
        }
    }
    for (bi, b) in bins.iter().enumerate().take(n_explicit) {
        if !used[bi] {
            eprintln!(
                "gort-symbolize: {}: matches no module of the dump (build-id {})",
                b.path.display(),
                b.build_id.as_deref().unwrap_or("none")
            );
        }
    }
    for (bi, b) in bins.iter().enumerate() {
        if used[bi] && !b.has_dwarf() {
            eprintln!(
                "gort-symbolize: {}: no debug info (.debug_info){}",
                b.path.display(),
                if b.has_symbols() {
                    ": functions from the symbol table, no file:line"
                } else {
                    " and no symbol table: nothing to resolve with (stripped? pass the \
                     unstripped build or its debug file with --binary)"
                }
            );
        }
    }

    // Rewrite.
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut exact_next = false;
    let mut cache: HashMap<(usize, u64), Option<String>> = HashMap::new();
    for line in dump.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start();
        if trimmed.starts_with("goroutine ") {
            // The frames of a running G and of goroutine 0 come from a
            // signal context: their first pc is exact.
            exact_next = trimmed.contains("[running") || trimmed.starts_with("goroutine 0 [");
        }
        let mut notes = String::new();
        for t in tokens(body) {
            // Function lines (`name+0x1c`) also look like tokens: only a
            // token naming a module is a frame.
            let bi = match module_for(&modules, t.prefix) {
                Some(mi) => binary_of[mi],
                None if modules.is_empty() && file_like(t.prefix) => {
                    binary_of_bare.get(t.prefix).copied()
                }
                None => continue,
            };
            let exact = std::mem::take(&mut exact_next);
            let Some(bi) = bi else { continue };
            let probe = if exact {
                t.offset
            } else {
                t.offset.wrapping_sub(1)
            };
            let what = cache
                .entry((bi, probe))
                .or_insert_with(|| bins[bi].describe(t.offset, probe));
            if let Some(w) = what {
                notes.push_str(" [");
                notes.push_str(w);
                notes.push(']');
            }
        }
        let r = out
            .write_all(body.as_bytes())
            .and_then(|()| out.write_all(notes.as_bytes()))
            .and_then(|()| out.write_all(nl.as_bytes()));
        if let Err(e) = r {
            return write_error(e);
        }
    }
    out.flush().or_else(write_error)
}

/// A closed pipe (`| head`) ends the output quietly; anything else is fatal.
fn write_error(e: io::Error) -> Result<(), Fatal> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Fatal(format!("cannot write the output: {e}"), 1))
    }
}

fn read_dump(path: Option<&Path>) -> Result<String, Fatal> {
    let mut bytes = Vec::new();
    match path {
        None => {
            io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Fatal(format!("cannot read the dump from stdin: {e}"), 1))?;
        }
        Some(p) if p == Path::new("-") => {
            io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Fatal(format!("cannot read the dump from stdin: {e}"), 1))?;
        }
        Some(p) => {
            bytes = std::fs::read(p)
                .map_err(|e| Fatal(format!("{}: cannot read the dump: {e}", p.display()), 1))?;
        }
    }
    // A dump cut mid-character (a killed writer) still symbolizes.
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// A line of the dump's module list.
#[derive(Debug)]
struct DumpModule {
    path: String,
    build_id: Option<String>,
}

/// `module <path> base=0x<hex>[ build-id=<hex>]` lines.
fn parse_module_list(dump: &str) -> Vec<DumpModule> {
    let mut out = Vec::new();
    for line in dump.lines() {
        let Some(rest) = line.trim().strip_prefix("module ") else {
            continue;
        };
        let Some(at) = rest.rfind(" base=0x") else {
            continue;
        };
        let path = rest[..at].trim();
        if path.is_empty() {
            continue;
        }
        let build_id = rest[at..]
            .split_whitespace()
            .find_map(|w| w.strip_prefix("build-id="))
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        out.push(DumpModule {
            path: path.to_string(),
            build_id,
        });
    }
    out
}

/// A `<prefix>+0x<hex>` token in a line.
struct Token<'a> {
    prefix: &'a str,
    offset: u64,
}

/// The tokens of a line, in order. The prefix is the run of non-blank
/// characters before `+0x`; the hex must end at a blank, the line's end or
/// punctuation.
fn tokens(line: &str) -> impl Iterator<Item = Token<'_>> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(rel) = line[from..].find("+0x") {
            let plus = from + rel;
            let hex_start = plus + 3;
            let hex_len = line[hex_start..]
                .bytes()
                .take_while(u8::is_ascii_hexdigit)
                .count();
            let end = hex_start + hex_len;
            from = end.max(plus + 1);
            let prefix_start = line[..plus].rfind(char::is_whitespace).map_or(0, |i| {
                i + line[i..].chars().next().map_or(1, char::len_utf8)
            });
            let prefix = &line[prefix_start..plus];
            let ends_cleanly = line[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_');
            if hex_len == 0 || hex_len > 16 || prefix.is_empty() || !ends_cleanly {
                continue;
            }
            let Ok(offset) = u64::from_str_radix(&line[hex_start..end], 16) else {
                continue;
            };
            return Some(Token { prefix, offset });
        }
        None
    })
}

/// Whether a token's prefix may be a file name (a function line's is a
/// Rust path: `a::b`, `<T as U>::f`).
fn file_like(prefix: &str) -> bool {
    !prefix.contains("::") && !prefix.contains('<')
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The dump module a token's prefix names: its path, or its file name.
fn module_for(modules: &[DumpModule], prefix: &str) -> Option<usize> {
    modules.iter().position(|m| m.path == prefix).or_else(|| {
        let name = basename(prefix);
        modules.iter().position(|m| basename(&m.path) == name)
    })
}

/// The binary for a dump module: same build-id when both have one; else
/// same file name (a build-id mismatch between same-named files is
/// reported and refused).
fn match_binary(m: &DumpModule, bins: &[Binary<'_>]) -> Option<usize> {
    if let Some(id) = &m.build_id
        && let Some(i) = bins.iter().position(|b| b.build_id.as_ref() == Some(id))
    {
        return Some(i);
    }
    let name = basename(&m.path);
    let mut found = None;
    for (i, b) in bins.iter().enumerate() {
        if b.name != name {
            continue;
        }
        match (&m.build_id, &b.build_id) {
            (Some(want), Some(have)) => {
                eprintln!(
                    "gort-symbolize: {}: build-id {have} differs from the dump's {} ({want}): \
                     not the build that crashed, not used",
                    b.path.display(),
                    m.path
                );
            }
            _ => {
                found.get_or_insert(i);
            }
        }
    }
    found
}

type Reader<'a> = gimli::EndianSlice<'a, gimli::RunTimeEndian>;

/// An ELF file loaded for symbolization.
struct Binary<'a> {
    path: PathBuf,
    /// File name, for matching.
    name: String,
    build_id: Option<String>,
    /// `[start, end)` of executable sections (file virtual addresses).
    text: Vec<(u64, u64)>,
    dwarf: Option<addr2line::Context<Reader<'a>>>,
    /// Function symbols `(start, size, name)` sorted by start, one per
    /// start (a global name preferred).
    symbols: Vec<(u64, u64, &'a str)>,
}

impl<'a> Binary<'a> {
    fn load(path: &Path, data: &'a [u8]) -> Result<Binary<'a>, String> {
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
                                "{} is compressed, which this tool does not read; \
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
            let sections = gimli::Dwarf::load(load)?;
            Some(
                addr2line::Context::from_dwarf(sections)
                    .map_err(|e| format!("unreadable debug info: {e}"))?,
            )
        } else {
            None
        };
        Ok(Binary {
            path: path.to_path_buf(),
            name: basename(&path.to_string_lossy()).to_string(),
            build_id: build_id_hex(&file),
            text,
            dwarf,
            symbols: function_symbols(&file),
        })
    }

    fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    fn has_symbols(&self) -> bool {
        !self.symbols.is_empty()
    }

    /// `function at file:line[ <- caller at file:line…]` for the frame at
    /// `offset` (looked up at `probe`), or None when nothing is known.
    fn describe(&self, offset: u64, probe: u64) -> Option<String> {
        // A module offset outside code is not a frame (a function-relative
        // `name+0x1c` whose name happens to be a module's file name).
        if !self
            .text
            .iter()
            .any(|&(lo, hi)| offset >= lo && offset <= hi)
        {
            return None;
        }
        // (function, file:line), innermost inlined frame first.
        let mut frames: Vec<(Option<String>, Option<String>)> = Vec::new();
        if let Some(ctx) = &self.dwarf
            && let Ok(mut it) = ctx.find_frames(probe).skip_all_loads()
        {
            while let Ok(Some(f)) = it.next() {
                let name = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok())
                    .map(Cow::into_owned);
                let loc = f.location.and_then(|l| {
                    let file = l.file?;
                    Some(match l.line {
                        Some(line) => format!("{file}:{line}"),
                        None => file.to_string(),
                    })
                });
                frames.push((name, loc));
            }
        }
        // The outermost frame is the real function: the symbol table can
        // name it when DWARF does not (or when there is no DWARF).
        match frames.last_mut() {
            Some((name @ None, _)) => *name = self.symbol_name(probe),
            Some(_) => {}
            None => frames.push((Some(self.symbol_name(probe)?), None)),
        }
        let parts: Vec<String> = frames
            .into_iter()
            .filter_map(|f| match f {
                (Some(n), Some(l)) => Some(format!("{n} at {l}")),
                (Some(n), None) => Some(n),
                (None, Some(l)) => Some(format!("? at {l}")),
                (None, None) => None,
            })
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(parts.join(" <- "))
    }

    /// The function symbol containing `addr` (a sizeless one: the nearest
    /// before it), demangled.
    fn symbol_name(&self, addr: u64) -> Option<String> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= addr)
            .checked_sub(1)?;
        let (start, size, name) = self.symbols[i];
        if size != 0 && addr - start >= size {
            return None;
        }
        Some(match rustc_demangle::try_demangle(name) {
            Ok(d) => format!("{d:#}"),
            Err(_) => name.to_string(),
        })
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

fn build_id_hex(file: &object::File<'_>) -> Option<String> {
    let id = file.build_id().ok()??;
    if id.is_empty() {
        return None;
    }
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}
