//! Go's own traceback tooling reads gort's dumps: each scenario's dump is
//! fed to `panicparse` (Debian's package, 2.3.0; `ci/test.sh` installs it),
//! and the test asserts on what panicparse understood — every goroutine and
//! every frame parsed (nothing passed through raw), and the faulting
//! function at its real `file:line`.
//!
//! One adaptation, and only one: panicparse 2.3.0 accepts a frame's file
//! only if its name ends in `.go`, `.c` or `.s` (its `reFile`), so no Rust
//! source (`.rs`) can ever match, whatever the grammar around it. The test
//! appends `.go` to the `.rs` names of file lines (`x.rs:12` ->
//! `x.rs.go:12`) and changes nothing else; every other character of the
//! dump reaches panicparse as gort printed it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::{Outcome, crash_limit, run, run_signalled, under_qemu};

const BIN: &str = env!("CARGO_BIN_EXE_scenarios");

/// What panicparse made of a dump.
#[derive(Debug, Default)]
struct Parsed {
    /// (goroutines in the bucket, its calls as (file:line, function)).
    buckets: Vec<(usize, Vec<(String, String)>)>,
    /// panicparse's whole output, for messages.
    text: String,
}

impl Parsed {
    /// Goroutines with a call to a function whose name contains `func`.
    fn calls(&self, func: &str) -> usize {
        self.buckets
            .iter()
            .filter(|(_, calls)| calls.iter().any(|(_, f)| f.contains(func)))
            .map(|b| b.0)
            .sum()
    }

    fn goroutines(&self) -> usize {
        self.buckets.iter().map(|b| b.0).sum()
    }

    /// Whether some call is `func` at `file:line` (file matched by its end).
    fn has_call(&self, func: &str, file: &str, line: usize) -> bool {
        let want = format!("{file}.go:{line}");
        self.buckets.iter().any(|(_, calls)| {
            calls
                .iter()
                .any(|(at, f)| at.ends_with(&want) && f.trim_end_matches("(...)").ends_with(func))
        })
    }
}

/// The dump with `.rs:` file names made acceptable to panicparse (see the
/// module docs).
fn for_panicparse(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len() + 1024);
    for line in dump.split_inclusive('\n') {
        match (line.starts_with('\t'), line.find(".rs:")) {
            (true, Some(at))
                if line[at + 4..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit()) =>
            {
                out.push_str(&line[..at + 3]);
                out.push_str(".go");
                out.push_str(&line[at + 3..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

fn panicparse() -> &'static str {
    let found = Command::new("panicparse")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "panicparse is not installed: `apt-get install panicparse` (ci/test.sh installs it)"
    );
    "panicparse"
}

/// Runs panicparse on `dump` and parses its aggregated listing. Asserts
/// that it accepted the dump and passed no goroutine through unparsed.
fn parse(dump: &str) -> Parsed {
    let input = for_panicparse(dump);
    let path = std::env::temp_dir().join(format!(
        "gort-goparse-{}-{}.txt",
        std::process::id(),
        input.len()
    ));
    std::fs::write(&path, &input).unwrap();
    let out = Command::new(panicparse())
        .args(["-no-color", "-full-path", "-rebase=false", "-parse=false"])
        .arg(&path)
        .output()
        .expect("run panicparse");
    std::fs::remove_file(&path).ok();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "panicparse rejected the dump ({}):\n{text}\n--- input\n{input}",
        out.status
    );
    let mut p = Parsed {
        text: text.clone(),
        ..Parsed::default()
    };
    for line in text.lines() {
        // Raw passthrough of anything inside a goroutine is a parse failure.
        assert!(
            !(line.starts_with("goroutine ")
                || line.starts_with('\t')
                || line.starts_with("created by ")
                || line.ends_with(')') && !line.starts_with(' ')),
            "panicparse passed a goroutine's line through unparsed: {line:?}\n{text}"
        );
        if let Some((n, _)) = line.split_once(": ")
            && let Ok(n) = n.parse::<usize>()
        {
            p.buckets.push((n, Vec::new()));
        } else if line.starts_with("    ")
            && let Some(b) = p.buckets.last_mut()
        {
            let t = line.trim();
            if t == "(...)" || t.starts_with("<unavailable>:") {
                // panicparse's marks for Go's elision line and for Go's
                // "goroutine running on other thread; stack unavailable".
                continue;
            }
            let Some(at) = t.split_whitespace().find(|w| {
                w.contains(".go:") || w.contains(".c:") || w.contains(".s:") || w.starts_with("??:")
            }) else {
                panic!("a call without file:line: {line:?}\n{text}");
            };
            let func = t[t.find(at).unwrap() + at.len()..].trim().to_string();
            b.1.push((at.to_string(), func));
        }
    }
    // Every goroutine of the dump, and every frame of each.
    let headers = dump.lines().filter(|l| l.starts_with("goroutine ")).count();
    assert_eq!(
        p.goroutines(),
        headers,
        "panicparse found {} goroutines, the dump has {headers}:\n{text}\n--- dump\n{dump}",
        p.goroutines()
    );
    let frames = dump
        .lines()
        .filter(|l| l.ends_with("(...)") && !l.starts_with(['\t', ' ', '[']))
        .count();
    let parsed: usize = p.buckets.iter().map(|(n, calls)| n * calls.len()).sum();
    assert_eq!(
        parsed, frames,
        "panicparse parsed {parsed} frames, the dump has {frames}:\n{text}\n--- dump\n{dump}"
    );
    assert!(headers > 0, "no goroutine in the dump:\n{dump}");
    p
}

/// Line of the first line of `source` after `after` that contains `what`
/// (1-based): where a scenario really faults.
fn line_of(source: &str, after: &str, what: &str) -> usize {
    let start = source.find(after).expect("marker in the source");
    let at = start + source[start..].find(what).expect("fault in the source");
    source[..at].lines().count()
}

const SCENARIOS_SRC: &str = include_str!("../src/bin/scenarios/crash_scenarios.rs");

fn null_read_line() -> usize {
    line_of(
        SCENARIOS_SRC,
        "fn crash_here_with_null_read",
        "read_volatile(p)",
    )
}

fn check_null_read(o: &Outcome, p: &Parsed) {
    assert!(
        p.has_call(
            "crash_here_with_null_read",
            "crash_scenarios.rs",
            null_read_line()
        ),
        "the faulting function is not at crash_scenarios.rs:{}:\n{}\n--- dump\n{o}",
        null_read_line(),
        p.text
    );
}

/// Runs a scenario that faults (exit status 2) and parses its dump.
fn dump_of(scenario: &str, env: &[(&str, &str)]) -> (Outcome, Parsed) {
    let o = run_signalled(BIN, &[scenario], env, None, crash_limit());
    assert_eq!(o.code, Some(2), "{o}");
    let p = parse(&o.stderr);
    (o, p)
}

#[test]
fn a_segfault_in_a_g_parses() {
    let (o, p) = dump_of("crash_levels", &[("GORT_TRACEBACK", "all")]);
    check_null_read(&o, &p);
    // Two of the three parked Gs are in the group line gort prints after
    // the first one's stack.
    assert!(
        o.stderr
            .contains("[2 more goroutines with the stack of goroutine "),
        "{o}"
    );
}

#[test]
fn sigquit_in_crash_mode_with_every_ms_section_parses() {
    let o = run_signalled(
        BIN,
        &["crash_dumps_all_threads"],
        &[("GORT_TRACEBACK", "crash"), ("GORT_MAXPROCS", "5")],
        Some(libc::SIGQUIT),
        crash_limit(),
    );
    assert_eq!(o.signal, Some(libc::SIGABRT), "{o}");
    assert!(
        o.stderr.contains("\n-----\n"),
        "no sections of other Ms:\n{o}"
    );
    let p = parse(&o.stderr);
    let busy = p.calls("busy_loop_function");
    assert_eq!(
        busy, 4,
        "the 4 busy Gs, each in its M's section:\n{}",
        p.text
    );
}

#[test]
fn a_crash_in_a_foreign_callback_with_parked_gs_parses() {
    let (o, p) = dump_of("crash_in_foreign_callback", &[("GORT_TRACEBACK", "all")]);
    check_null_read(&o, &p);
    assert!(p.calls("callback_that_faults") > 0, "{}", p.text);
    let sleep = line_of(
        SCENARIOS_SRC,
        "fn parked_sleeper_function",
        "runtime::sleep",
    );
    assert!(
        p.has_call("parked_sleeper_function", "crash_scenarios.rs", sleep),
        "the parked Gs are not listed at crash_scenarios.rs:{sleep}:\n{}",
        p.text
    );
}

#[test]
fn a_g_stack_overflow_parses() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: guard pages are mprotect pages there and qemu reports the overflow fault differently"
        );
        return;
    }
    let (_, p) = dump_of("crash_g_stack_overflow", &[]);
    let at = line_of(SCENARIOS_SRC, "fn recurse_forever", "recurse_forever(");
    assert!(p.calls("recurse_forever") > 0, "{}", p.text);
    assert!(
        p.buckets
            .iter()
            .flat_map(|b| &b.1)
            .any(|(file, _)| file.contains("crash_scenarios.rs.go:")),
        "no file:line near crash_scenarios.rs:{at}:\n{}",
        p.text
    );
}

#[test]
fn a_crash_in_the_very_first_g_parses() {
    let (o, p) = dump_of("crash_first_g", &[]);
    check_null_read(&o, &p);
}

/// A crate of a user's: depends on gort by path, built with plain `cargo
/// build` (debug, no profile settings: its dependencies are unoptimised,
/// unlike gort's own workspace), crashes in its first G.
#[test]
fn a_debug_build_of_a_separate_crate_parses() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: building a separate crate for the foreign target needs \
             -Zbuild-std (minutes per run); the other scenarios cover the grammar on every arch"
        );
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixture = root.join("tests").join("crate-debug");
    let work = root.join("target").join("crate-debug");
    let pkg = work.join("pkg");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    let manifest = std::fs::read_to_string(fixture.join("Cargo.toml.in"))
        .unwrap()
        .replace("@GORT@", &root.canonicalize().unwrap().to_string_lossy());
    write_if_changed(&pkg.join("Cargo.toml"), &manifest);
    let main_src = std::fs::read_to_string(fixture.join("main.rs")).unwrap();
    write_if_changed(&pkg.join("src").join("main.rs"), &main_src);
    // The workspace's lock file pins the same versions (no registry
    // look-ups beyond what the workspace already resolved).
    if !pkg.join("Cargo.lock").exists() {
        std::fs::copy(root.join("Cargo.lock"), pkg.join("Cargo.lock")).unwrap();
    }
    let st = Command::new(env!("CARGO"))
        .current_dir(&pkg)
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env_remove("RUSTFLAGS")
        .args(["build", "--quiet"])
        .status()
        .expect("run cargo");
    assert!(st.success(), "the separate crate did not build: {st}");
    let exe = work.join("target").join("debug").join("crate-debug");
    let o = run(exe.to_str().unwrap(), &[], &[], Duration::from_secs(60));
    assert_eq!(o.code, Some(2), "{o}");
    let p = parse(&o.stderr);
    let fault = line_of(&main_src, "fn faulting_function", "read_volatile(p)");
    assert!(
        p.has_call("crate_debug::faulting_function", "src/main.rs", fault),
        "the faulting function is not at src/main.rs:{fault}:\n{}\n--- dump\n{o}",
        p.text
    );
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}
