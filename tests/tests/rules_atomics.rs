//! The atomics rule of `docs/design.md` ("Rules of the road"), checked:
//! every `SeqCst` access or fence in the runtime's crates carries a
//! `// SeqCst:` comment that names the other side of its pair.
//!
//! Symptom guarded against: a `SeqCst` added "to be safe" with no partner,
//! which costs a full barrier on every hot path it sits on and tells the
//! next reader nothing about which order it protects.

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
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `SeqCst` uses in `text` without a `// SeqCst:` reason above them,
/// as 1-based line numbers. A file's `#[cfg(test)] mod …` ends the scan:
/// tests may use `SeqCst` throughout (the rule says so).
fn unexplained(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("mod tests") && i > 0 && lines[i - 1].trim() == "#[cfg(test)]" {
            break;
        }
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
