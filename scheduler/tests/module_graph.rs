//! The scheduler's import graph, read from its sources, against the
//! direction `docs/design.md` ("Module map") draws: a data layer that
//! imports nothing above it, an engine above it, satellites on top that reach
//! the engine only through its root module.
//!
//! Symptom guarded: a change adds a back edge (a run-queue helper calling
//! `ready`, the engine calling into sysmon) and the crate quietly becomes
//! one knot again, where every file has to be read to understand any.
//! Visibility (`pub(in crate::engine)`) stops most such edges at compile
//! time; this test stops the rest (a `pub(crate)` item used from below) and
//! prints the figures the design section quotes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules of the data layer: state and the operations on it that call no
/// scheduling logic. They may import only each other.
const DATA: &[&str] = &[
    "barrier",
    "bell",
    "bound",
    "clock",
    "config",
    "fatal",
    "fork",
    "g",
    "lock_rank",
    "loom",
    "m",
    "mlist",
    "p",
    "process",
    "registry",
    "runq",
    "socket",
    "stack",
    "state",
    "thread_state",
    "timer_heap",
];

/// Data modules whose types point at each other — a G's locked M, an M's
/// current G and P, a P's M, and the P's run queue and timer heap, which
/// hold Gs — and so import each other: one data structure in five files
/// (Go keeps it in one, `runtime2.go`). The cycle check sees them as one
/// node; they still may not import anything above the data layer, and no
/// other data module may join their cycle.
const TYPE_KNOT: &[&str] = &["g", "m", "p", "runq", "timer_heap"];

/// The engine: modules under `engine/`. Satellites import only its root
/// (the narrow API) and `engine::hooks` (to register themselves).
const ENGINE: &str = "engine";
const ENGINE_HOOKS: &str = "engine::hooks";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Data,
    Engine,
    Satellite,
}

fn layer(module: &str) -> Layer {
    let top = module.split("::").next().unwrap_or(module);
    if top == ENGINE {
        Layer::Engine
    } else if DATA.contains(&top) {
        Layer::Data
    } else {
        Layer::Satellite
    }
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → `` (the
/// crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Unit tests in files of their own (`engine/tests.rs`, `stack/tests/`)
/// and the support they share (`test_support.rs`): like a file's inline
/// test module, they may use anything to drive the code under test.
fn is_test_code(module: &str) -> bool {
    module == "test_support" || module.split("::").any(|part| part == "tests")
}

/// The code of a file without comments, string literals and its unit-test
/// module (tests may use anything; what they use is not the design).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\n'), not a lifetime.
            let end = text[i + 1..].find('\'').map_or(b.len(), |e| i + 1 + e + 1);
            i = if b[i + 1] == b'\\' {
                text[i + 3..].find('\'').map_or(b.len(), |e| i + 3 + e + 1)
            } else {
                end
            };
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path a piece of code names through `crate::` (a `use` tree is
/// expanded: `crate::{a::b, c}` names `a::b` and `c`), or through `super::`
/// (made absolute from `module`).
fn paths_named(code: &str, module: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for (start, prefix) in [("crate::", Vec::new()), ("super::", parent_of(module))] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let i = from + at;
            from = i + start.len();
            if i > 0 && (ident(b[i - 1]) || b[i - 1] == b':') {
                continue;
            }
            use_tree(code, from, prefix.clone(), &mut out);
        }
    }
    out
}

fn parent_of(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module.split("::").map(String::from).collect();
    parts.pop();
    parts
}

/// Reads a use tree (or a plain path) at `code[i..]` under `prefix`.
fn use_tree(code: &str, mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let b = code.as_bytes();
    let mut path = prefix;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
                i = use_tree(code, i, path.clone(), out);
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if start == i {
            break;
        }
        path.push(code[start..i].to_string());
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// The module a path lands in: its longest prefix that is a module.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

struct Graph {
    modules: BTreeSet<String>,
    /// from → to, each with how many paths name it.
    edges: BTreeMap<String, BTreeMap<String, usize>>,
    /// Paths written inline (`crate::x::f()`), not in a `use`.
    inline_paths: usize,
}

fn read_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| !m.is_empty() && !is_test_code(m))
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut inline_paths = 0;
    for f in &files {
        let from = module_of(&src, f);
        if from.is_empty() || is_test_code(&from) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let in_use: usize = code
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("use crate::") || l.starts_with("pub use crate::")
            })
            .count();
        let named = paths_named(&code, &from);
        let crate_paths = code.matches("crate::").count();
        inline_paths += crate_paths.saturating_sub(in_use);
        let out = edges.entry(from.clone()).or_default();
        for p in named {
            if let Some(to) = resolve(&p, &modules)
                && to != from
                // A module's own children are its private rooms.
                && !to.starts_with(&format!("{from}::"))
            {
                *out.entry(to).or_default() += 1;
            }
        }
    }
    Graph {
        modules,
        edges,
        inline_paths,
    }
}

/// Strongly connected components (Tarjan), largest first; only those with
/// more than one member.
fn cycles(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Vec<String>> {
    struct St<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut St<'a>, v: &'a str) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        let succ: Vec<&'a str> = st
            .edges
            .get(v)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for w in succ {
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = st.stack.pop().unwrap();
                st.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = St {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    st.out
}

fn plain(edges: &BTreeMap<String, BTreeMap<String, usize>>) -> BTreeMap<String, BTreeSet<String>> {
    edges
        .iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect()
}

/// Prints the figures of the graph: files in import cycles, pairs of
/// modules importing each other, cross-file arrows, inline paths.
#[test]
fn figures() {
    let g = read_graph();
    let edges = plain(&g.edges);
    let arrows: usize = edges.values().map(BTreeSet::len).sum();
    let mutual: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(a, tos)| tos.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| a < b && edges.get(b).is_some_and(|s| s.contains(a)))
        .collect();
    let knots = cycles(&g.modules, &edges);
    eprintln!("modules: {}", g.modules.len());
    eprintln!("cross-file arrows: {arrows}");
    eprintln!("pairs importing each other: {}", mutual.len());
    for (a, b) in &mutual {
        eprintln!("    {a} <-> {b}");
    }
    eprintln!("inline crate:: paths: {}", g.inline_paths);
    for k in &knots {
        eprintln!("cycle of {} files: {}", k.len(), k.join(", "));
    }
    assert!(arrows > 0, "no imports read: the parser is broken");
}

/// The direction of the module map, checked.
#[test]
fn imports_follow_the_module_map() {
    let g = read_graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g.edges {
        for to in tos.keys() {
            let (lf, lt) = (layer(from), layer(to));
            let why = match (lf, lt) {
                (Layer::Data, Layer::Engine | Layer::Satellite) => {
                    Some("the data layer calls no scheduling logic")
                }
                (Layer::Engine, Layer::Satellite) => Some(
                    "the engine reaches satellites only through hooks they register (engine/hooks.rs)",
                ),
                (Layer::Satellite, Layer::Engine) if to != ENGINE && to != ENGINE_HOOKS => {
                    Some("satellites use the engine's root API, not its rooms")
                }
                _ => None,
            };
            if let Some(why) = why {
                wrong.push(format!("{from} -> {to}: {why}"));
            }
        }
    }
    // With the engine and the G/M/P structure each seen as one node,
    // nothing may form a cycle.
    let collapse = |m: &str| {
        if layer(m) == Layer::Engine {
            ENGINE.to_string()
        } else if TYPE_KNOT.contains(&m) {
            TYPE_KNOT.join("+")
        } else {
            m.to_string()
        }
    };
    let mut nodes = BTreeSet::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &g.modules {
        nodes.insert(collapse(m));
    }
    for (from, tos) in &g.edges {
        for to in tos.keys() {
            let (a, b) = (collapse(from), collapse(to));
            // A submodule may use its parent (chan::select -> chan).
            if a != b && !a.starts_with(&format!("{b}::")) {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    for k in cycles(&nodes, &edges) {
        wrong.push(format!("import cycle outside the engine: {}", k.join(", ")));
    }
    assert!(
        wrong.is_empty(),
        "imports against the module map (docs/design.md):\n  {}",
        wrong.join("\n  ")
    );
}

/// The reader itself: a use tree with groups and nesting, and inline paths.
#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let code = code_of(
        "use crate::{a::{b, c::D}, e};\n// crate::commented::out\nfn f() { crate::x::y(); let s = \"crate::in_string\"; }\n",
    );
    let mut got: Vec<String> = paths_named(&code, "z")
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    got.sort();
    assert_eq!(got, ["a::b", "a::c::D", "e", "x::y"]);
    let sup: Vec<String> = paths_named("use super::ring::Ring;", "chan::select")
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(sup, ["chan::ring::Ring"]);
}
