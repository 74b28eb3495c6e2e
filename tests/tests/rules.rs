//! Rules of `docs/design.md` ("Rules of the road") that a reading of the
//! source can check, over the non-test code of the runtime's crates:
//!
//! - every `SeqCst` access or fence carries a `// SeqCst:` comment that
//!   names the other side of its pair. Symptom guarded against: a `SeqCst`
//!   added "to be safe" with no partner, which costs a full barrier on
//!   every hot path it sits on and tells the next reader nothing about
//!   which order it protects;
//! - every lock the runtime takes for its own state is a
//!   `lock_rank::RankedMutex` (or records its rank by hand). Symptom
//!   guarded against: a new `parking_lot`/std mutex that the debug-build
//!   lock-order check never sees, so the deadlock it can take part in shows
//!   up only in production.

use std::path::{Path, PathBuf};

/// The crates whose non-test code the rule covers.
const CRATES: [&str; 5] = ["arch", "scheduler", "signals", "runtime", "capi"];

/// How far above a use its reason may stand (a multi-line statement, a
/// reason shared by two loads of one condition).
const REACH: usize = 12;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            // Unit-test modules kept in their own folder.
            if p.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            // Unit-test modules and their shared support, compiled only
            // with `cfg(test)`.
            && !p
                .file_name()
                .is_some_and(|n| n == "tests.rs" || n == "test_support.rs")
        {
            out.push(p);
        }
    }
}

/// Files whose locks are not the runtime's own: the rank module itself, and
/// `runtime::sync`, the locks programs take (held across parks, in any
/// order the program chooses, as Go's `sync.Mutex`).
const LOCKS_EXEMPT: [&str; 2] = ["scheduler/src/lock_rank.rs", "runtime/src/sync/"];

/// Spellings of a lock that is not ranked.
const UNRANKED: [&str; 6] = [
    "parking_lot::Mutex<",
    "parking_lot::RwLock<",
    "parking_lot::FairMutex<",
    "std::sync::Mutex",
    "std::sync::RwLock",
    "spin::Mutex",
];

/// How many of `lines` come before a `#[cfg(test)] mod tests` (the rules
/// do not apply to tests).
fn non_test_len(lines: &[&str]) -> usize {
    (1..lines.len())
        .find(|&i| {
            lines[i].trim_start().starts_with("mod tests") && lines[i - 1].trim() == "#[cfg(test)]"
        })
        .unwrap_or(lines.len())
}

/// Lines of `text` (1-based) that declare or import an unranked lock,
/// before a `#[cfg(test)] mod`.
fn unranked(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    for (i, line) in lines.iter().enumerate().take(non_test_len(&lines)) {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let imports_one = code.starts_with("use ")
            && (code.contains("parking_lot::") || code.contains("std::sync::"))
            && (code.contains("Mutex") || code.contains("RwLock"))
            && !code.contains("MutexGuard");
        if imports_one || UNRANKED.iter().any(|u| code.contains(u)) {
            bad.push(i + 1);
        }
    }
    bad
}

fn sources() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root.join(c).join("src"), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} source files under {}",
        files.len(),
        root.display()
    );
    (root, files)
}

/// The `SeqCst` uses in `text` without a `// SeqCst:` reason above them,
/// as 1-based line numbers. A file's `#[cfg(test)] mod …` ends the scan:
/// tests may use `SeqCst` throughout (the rule says so).
fn unexplained(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    for (i, line) in lines.iter().enumerate().take(non_test_len(&lines)) {
        let code = line.trim_start();
        if code.starts_with("//") || !code.contains("SeqCst") {
            continue;
        }
        let from = i.saturating_sub(REACH);
        if !lines[from..i]
            .iter()
            .any(|l| l.trim_start().starts_with("// SeqCst:"))
        {
            bad.push(i + 1);
        }
    }
    bad
}

#[test]
fn every_seqcst_in_the_runtime_crates_has_a_reason() {
    let (root, files) = sources();
    let mut missing = Vec::new();
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        seen += text.matches("SeqCst").count();
        for n in unexplained(&text) {
            missing.push(format!(
                "{}:{n}",
                f.strip_prefix(&root).unwrap_or(f).display()
            ));
        }
    }
    assert!(
        seen > 0,
        "no SeqCst found at all: the scan is looking in the wrong place"
    );
    assert!(
        missing.is_empty(),
        "SeqCst without a `// SeqCst:` comment naming its pair (docs/design.md, \"Atomics\"):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_a_bare_seqcst_and_accepts_a_reasoned_one() {
    let bare = "fn f(a: &AtomicU32) {\n    a.store(1, Ordering::SeqCst);\n}\n";
    assert_eq!(unexplained(bare), vec![2]);
    let reasoned = "fn f(a: &AtomicU32) {\n    // SeqCst: pairs with g's load.\n    a.store(1, Ordering::SeqCst);\n}\n";
    assert!(unexplained(reasoned).is_empty());
    let in_tests =
        "#[cfg(test)]\nmod tests {\n    fn t(a: &AtomicU32) { a.store(1, Ordering::SeqCst); }\n}\n";
    assert!(unexplained(in_tests).is_empty());
}

#[test]
fn every_runtime_lock_has_a_rank() {
    let (root, files) = sources();
    let mut found = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        if LOCKS_EXEMPT.iter().any(|e| rel.starts_with(e)) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for n in unranked(&text) {
            found.push(format!("{rel}:{n}"));
        }
    }
    assert!(
        found.is_empty(),
        "locks without a rank (use scheduler::lock_rank::RankedMutex and add a Rank; \
         docs/design.md, \"Lock order\"):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_lock_scan_finds_an_unranked_mutex() {
    assert_eq!(unranked("use parking_lot::Mutex;\n"), vec![1]);
    assert_eq!(unranked("use std::sync::{Arc, Mutex};\n"), vec![1]);
    assert_eq!(unranked("static S: parking_lot::Mutex<u8> = M;\n"), vec![1]);
    assert!(unranked("use parking_lot::Condvar;\nstatic S: RankedMutex<u8> = x;\n").is_empty());
    assert!(unranked("#[cfg(test)]\nmod tests {\n    use std::sync::Mutex;\n}\n").is_empty());
}
