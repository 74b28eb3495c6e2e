//! `gort-symbolize`: rewrites a gort crash dump offline with the debug info
//! of the build that crashed: every frame gets its function, its inlined
//! calls and `file:line`, in the dump's own grammar (Go's).
//!
//! A dump's file lines end in ` pc=0x<address>` and the dump ends with a
//! module list (`module <path> base=0x… build-id=<hex>`). For each frame
//! this tool finds the module holding the pc (the one with the highest
//! base at or below it), looks `pc − base` up in the matching binary, and
//! replaces the frame's two lines with one `function(...)` / `\tfile:line`
//! pair per source frame (inlined calls first), the original suffix
//! (` +0x… fp=… sp=… pc=…`) kept on the last. Runtime frames revealed that
//! way are hidden as the dump would have hidden them (`--system` keeps
//! them). Everything else — crash-mode sections of other Ms included — is
//! copied as it is.
//!
//! Binaries are matched to the dump's modules by GNU build-id when both
//! have one (so a separate debug file, `objcopy --only-keep-debug`, works
//! under any name), else by file name. A module with no `--binary` is
//! looked for at its own path on this machine, used only if its build-id
//! matches. Frames of modules nothing matches are left as they are.
//!
//! This is an offline tool: it allocates, reads whole files and is not
//! async-signal-safe in any way.

use signals::symbolize::{Binary, FileIndex, Loc, Site, build_id_hex, is_runtime_frame};
use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: gort-symbolize [--binary PATH]... [--system] [DUMP]

Reads a gort crash dump from DUMP (or stdin) and prints it with every
frame (a `function(...)` line and a `\t... pc=0x<address>` line) resolved
to its function, inlined calls and `file:line`, in the same grammar.

  --binary PATH   an executable or shared object with debug info (or its
                  separate debug file) of the build that crashed; may be
                  repeated. Matched to the dump's modules by build-id when
                  both have one, else by file name. Without it, modules are
                  looked for at the paths the dump names (build-id checked).
  --system        keep the runtime's own frames (as GORT_TRACEBACK=system)
  -h, --help      this text

The first frame of a running goroutine (and of `goroutine 0`) is the exact
pc; the other frames are return addresses and resolve at pc-1, the call.
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
    system: bool,
}

fn parse_args() -> Result<Option<Args>, Fatal> {
    let mut args = Args {
        binaries: Vec::new(),
        dump: None,
        system: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-h" | "--help") => return Ok(None),
            Some("--system") => args.system = true,
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
    let frames: Vec<u64> = dump.lines().filter_map(frame_pc).collect();
    if frames.is_empty() {
        eprintln!(
            "gort-symbolize: no frames (`... pc=0x<address>` lines) in the dump; copied unchanged"
        );
    } else if modules.is_empty() {
        eprintln!(
            "gort-symbolize: the dump has no module list (`module <path> base=… build-id=…`): \
             frames cannot be placed in a binary; copied unchanged"
        );
    }
    // Which modules the frames fall in, so only those are looked for.
    let mut wanted = vec![false; modules.len()];
    for &pc in &frames {
        if let Some(mi) = module_at(&modules, pc) {
            wanted[mi] = true;
        }
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

    // Rewrite: a function line followed by a file line with `pc=` is a
    // frame.
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut cache: HashMap<(usize, u64), (Vec<Loc>, Option<u64>)> = HashMap::new();
    let lines: Vec<&str> = dump.split_inclusive('\n').collect();
    let mut exact_next = false;
    let mut files: Option<FileIndex> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let body = line.trim_end_matches('\n');
        if let Some(rest) = body.strip_prefix("goroutine ") {
            // The frames of a running G and of goroutine 0 come from a
            // signal context: their first pc is exact.
            exact_next = rest.contains(" [running]") || rest.starts_with("0 [");
        }
        let pair = lines.get(i + 1).map(|l| l.trim_end_matches('\n'));
        if let (Some(next), Some(rest)) = (pair, body.strip_prefix("created by "))
            && let Some(text) = spawner_lines(
                rest,
                next,
                binary_of.first().copied().flatten().map(|bi| &bins[bi]),
                &mut files,
            )
        {
            write_all(&mut out, &text)?;
            i += 2;
            continue;
        }
        let (Some(next), true) = (pair, body.ends_with(')')) else {
            write_all(&mut out, line)?;
            i += 1;
            continue;
        };
        let Some(pc) = frame_pc(next) else {
            write_all(&mut out, line)?;
            i += 1;
            continue;
        };
        let exact = std::mem::take(&mut exact_next);
        let resolved = module_at(&modules, pc).and_then(|mi| {
            let bi = binary_of[mi]?;
            let b = &bins[bi];
            let base = modules[mi].base;
            let probe = pc.wrapping_sub(base).wrapping_sub(u64::from(!exact));
            let e = cache.entry((bi, probe)).or_insert_with(|| {
                let entry = b.symbol(probe).map(|(start, _)| start.wrapping_add(base));
                (b.frames(probe), entry)
            });
            (!e.0.is_empty()).then_some(&*e)
        });
        let Some((locs, entry)) = resolved else {
            write_all(&mut out, line)?;
            i += 1;
            continue;
        };
        // Suffix of the original file line: ` +0x… fp=… sp=… pc=…`.
        let tail = next
            .find(" fp=")
            .map_or_else(|| format!(" pc={pc:#x}"), |at| next[at..].to_string());
        let off = match entry {
            Some(e) if pc > *e => format!(" +{:#x}", pc - e),
            _ => String::new(),
        };
        let keep = |k: usize, l: &Loc| {
            args.system
                || (exact && k == 0)
                || !is_runtime_frame(
                    l.function.as_deref().unwrap_or(""),
                    l.file.as_deref().unwrap_or(""),
                )
        };
        let shown: Vec<&Loc> = locs
            .iter()
            .enumerate()
            .filter(|(k, l)| keep(*k, l))
            .map(|(_, l)| l)
            .collect();
        let mut text = String::new();
        for (k, l) in shown.iter().enumerate() {
            text.push_str(l.function.as_deref().unwrap_or("?"));
            text.push_str("(...)\n\t");
            match &l.file {
                Some(f) => text.push_str(&format!("{f}:{}", l.line)),
                None => text.push_str("??:0"),
            }
            if k + 1 == shown.len() {
                text.push_str(&off);
                text.push_str(&tail);
            }
            text.push('\n');
        }
        write_all(&mut out, &text)?;
        i += 2;
    }
    out.flush().or_else(write_error)
}

/// `created by <spawner> in goroutine N` and its `\t<file>:<line>`, from
/// the executable's line tables, when the dump could not name them (a
/// stripped build prints a relative path). `files`: the executable's file
/// index, built on first use.
fn spawner_lines(
    rest: &str,
    next: &str,
    exe: Option<&Binary<'_>>,
    files: &mut Option<FileIndex>,
) -> Option<String> {
    let site = next.strip_prefix('\t')?;
    let (file, line) = site.rsplit_once(':')?;
    let line: u32 = line.parse().ok()?;
    if file.starts_with('/') {
        return None; // already resolved by the crashing process
    }
    let exe = exe?;
    let files = files.get_or_insert_with(|| exe.file_index(&mut || {}));
    // A dump prints no column: the calling function by its line alone.
    let site = Site {
        file,
        line,
        column: 0,
    };
    let (function, path) = exe.spawners(files, &[site], &mut || {}).pop().flatten()?;
    let parent = rest.find(" in goroutine ").map_or("", |at| &rest[at..]);
    Some(format!("created by {function}{parent}\n\t{path}:{line}\n"))
}

fn write_all(out: &mut impl Write, s: &str) -> Result<(), Fatal> {
    out.write_all(s.as_bytes()).or_else(write_error)
}

/// The `pc=0x…` that ends a frame's file line (a tab-indented line).
fn frame_pc(line: &str) -> Option<u64> {
    if !line.starts_with('\t') {
        return None;
    }
    let at = line.rfind(" pc=0x")?;
    let hex = &line[at + 6..];
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The dump module holding `pc`: the one with the highest base at or below
/// it.
fn module_at(modules: &[DumpModule], pc: u64) -> Option<usize> {
    modules
        .iter()
        .enumerate()
        .filter(|(_, m)| m.base <= pc)
        .max_by_key(|(_, m)| m.base)
        .map(|(i, _)| i)
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
    base: u64,
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
        let base = rest[at + 8..]
            .split_whitespace()
            .next()
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        let Some(base) = base else { continue };
        let build_id = rest[at..]
            .split_whitespace()
            .find_map(|w| w.strip_prefix("build-id="))
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        out.push(DumpModule {
            path: path.to_string(),
            base,
            build_id,
        });
    }
    out
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
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
        if basename(&b.path.to_string_lossy()) != name {
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
