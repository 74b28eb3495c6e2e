//! A stripped release binary's dump, symbolized offline: the scenarios
//! program is built in release (the workspace profile keeps line tables),
//! a copy is stripped and crashed (its dump has no names: `?(...)`,
//! `??:0 … pc=0x…`), and `gort-symbolize` turns the frames back into
//! functions and `file:line`, in the same grammar, with the unstripped
//! build matched by build-id.
//!
//! The release build has a target directory of its own
//! (`target/crash-release`), so it never waits for the lock of the build
//! that runs this test; after the first run it is incremental.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tests::{run, under_qemu};

fn build_release(root: &Path, target_dir: &Path) {
    let st = Command::new(env!("CARGO"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--release", "--quiet", "--locked"])
        .args(["-p", "tests", "--bin", "scenarios"])
        .args(["-p", "gort-signals", "--bin", "gort-symbolize"])
        .status()
        .expect("run cargo");
    assert!(st.success(), "release build failed: {st}");
}

#[test]
fn a_stripped_release_binarys_dump_resolves_to_file_and_line() {
    if under_qemu() {
        eprintln!(
            "skipped under qemu-user: a release build for the foreign target needs -Zbuild-std \
             (minutes per run); signals/tests/symbolize.rs covers the tool on every arch"
        );
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = root.join("target").join("crash-release");
    build_release(&root, &target_dir);
    let release = target_dir.join("release");
    let unstripped = release.join("scenarios");
    let stripped = release.join("scenarios-stripped");
    std::fs::copy(&unstripped, &stripped).expect("copy the binary");
    let st = Command::new("strip")
        .arg(&stripped)
        .status()
        .expect("run strip");
    assert!(st.success(), "strip failed");

    let o = run(
        stripped.to_str().unwrap(),
        &["crash_segv_in_g"],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(o.code, Some(2), "{o}");
    assert!(
        !o.stderr.contains("crash_here_with_null_read"),
        "the copy is not stripped (the dump names the function):\n{o}"
    );
    assert!(o.stderr.contains("?(...)\n\t??:0 "), "{o}");
    assert!(
        o.stderr.contains(" build-id="),
        "no build-id to match:\n{o}"
    );

    let dump = std::env::temp_dir().join(format!("gort-dump-{}.txt", std::process::id()));
    std::fs::write(&dump, &o.stderr).unwrap();
    let out = Command::new(release.join("gort-symbolize"))
        .arg("--binary")
        .arg(&unstripped)
        .arg(&dump)
        .output()
        .expect("run gort-symbolize");
    std::fs::remove_file(&dump).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gort-symbolize failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The faulting frame, with the file and line of the null read.
    let at = text
        .find("crash_here_with_null_read(...)\n\t")
        .unwrap_or_else(|| panic!("faulting function not symbolized:\n{text}"));
    let line = text[at..].lines().nth(1).unwrap();
    assert!(
        line.contains("crash_scenarios.rs:") && line.contains(" pc=0x"),
        "no file:line for the faulting function: {line}\n{text}"
    );
}
