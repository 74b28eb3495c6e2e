//! `gort-symbolize` on a dump that names this test program's own code: the
//! `module+0xoffset` frames come back with function and `file:line`, a
//! foreign build (build-id mismatch) is refused, bad input is reported.
//!
//! Under qemu-user (cross-arch CI) the tool, a foreign binary, runs through
//! `GORT_QEMU_RUNNER`.

use signals::modules;
use std::io::Write;
use std::process::{Command, Output, Stdio};

#[inline(never)]
fn symbolize_target(x: usize) -> usize {
    std::hint::black_box(x).wrapping_mul(3)
}

/// Runs the tool with `args`, `stdin` as its input.
fn run(args: &[&str], stdin: &str) -> Output {
    let tool = env!("CARGO_BIN_EXE_gort-symbolize");
    let runner = std::env::var("GORT_QEMU_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(qemu) => {
            let mut c = Command::new(qemu);
            c.args(words).arg(tool);
            c
        }
        None => Command::new(tool),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gort-symbolize");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("gort-symbolize output")
}

/// A dump in the handler's format with one frame: `symbolize_target`'s
/// first instruction, in a running G (an exact pc). Returns the dump, the
/// frame's module token and the executable's path.
fn dump_of_target(build_id: Option<&str>) -> (String, String, String) {
    let mods = modules::init();
    let pc = symbolize_target as *const () as usize;
    let (m, off) = modules::module_of(pc).expect("our code is in a module");
    assert!(std::ptr::eq(m, &mods[0]), "the executable is module 0");
    let mut hex = [0u8; 80];
    let id = build_id
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(m.build_id_hex(&mut hex)).into_owned());
    let token = format!("{}+{off:#x}", m.path);
    let mut dump = String::new();
    dump.push_str("fatal signal SIGSEGV: segmentation violation code=1(SEGV_MAPERR)\n\n");
    dump.push_str("goroutine 17 [running]:\n");
    dump.push_str("symbolize::symbolize_target+0x0\n");
    dump.push_str(&format!("\t{token} pc={pc:#x}\n\n"));
    dump.push_str("modules:\n");
    dump.push_str(&format!("module {} base={:#x}", m.path, m.base));
    if !id.is_empty() {
        dump.push_str(&format!(" build-id={id}"));
    }
    dump.push('\n');
    (dump, token, m.path.clone())
}

#[test]
fn frames_of_this_program_resolve_to_function_and_file_line() {
    let (dump, token, _) = dump_of_target(None);
    let exe = std::env::current_exe().unwrap();
    let out = run(&["--binary", exe.to_str().unwrap()], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&token))
        .unwrap_or_else(|| panic!("no frame line in:\n{stdout}"));
    assert!(
        line.contains(" ["),
        "not annotated: {line}\nstderr: {stderr}"
    );
    assert!(line.contains("symbolize_target"), "{line}");
    assert!(line.contains("symbolize.rs:"), "{line}");
    // Everything else is copied unchanged, the function line included.
    assert!(
        stdout.contains("\nsymbolize::symbolize_target+0x0\n"),
        "{stdout}"
    );
    assert!(stdout.contains("goroutine 17 [running]:"));
    assert_eq!(stdout.lines().count(), dump.lines().count());
    assert_eq!(symbolize_target(2), 6);
}

#[test]
fn the_dumps_own_module_path_is_used_without_binary() {
    // The module list names this executable and its build-id: no --binary
    // needed on the machine that crashed.
    let (dump, token, _) = dump_of_target(None);
    let out = run(&[], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let line = stdout.lines().find(|l| l.contains(&token)).unwrap();
    assert!(
        line.contains("symbolize_target") && line.contains("symbolize.rs:"),
        "{line}"
    );
}

#[test]
fn a_binary_of_another_build_is_refused() {
    let (dump, token, path) = dump_of_target(Some("00112233445566778899aabbccddeeff00112233"));
    let mut hex = [0u8; 80];
    if modules::init()[0].build_id_hex(&mut hex).is_empty() {
        eprintln!("skipped: this executable has no build-id to mismatch");
        return;
    }
    let out = run(&["--binary", &path], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "unmatched frames are not fatal: {stderr}"
    );
    let line = stdout.lines().find(|l| l.contains(&token)).unwrap();
    assert!(
        !line.contains(" ["),
        "annotated with the wrong build: {line}"
    );
    assert!(stderr.contains("differs"), "{stderr}");
    assert!(stderr.contains("no binary for"), "{stderr}");
}

#[test]
fn offsets_outside_code_are_not_frames() {
    // `name+0x1c` where the name is the module's file name (a function
    // line of a program named like a function) must stay as it is.
    let (mut dump, _, path) = dump_of_target(None);
    let name = path.rsplit('/').next().unwrap().to_string();
    dump.push_str(&format!("{name}+0x1c\n"));
    let out = run(&[], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("\n{name}+0x1c\n")), "{stdout}");
}

#[test]
fn bad_input_is_reported() {
    let out = run(&["/nonexistent/dump.txt"], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/dump.txt") && stderr.contains("cannot read"),
        "{stderr}"
    );

    let out = run(&["--binary", "/nonexistent/prog"], "x+0x10\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/prog"));

    let out = run(&["--frobnicate"], "");
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["--help"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: gort-symbolize"));

    // A dump with frames of an unknown module: copied unchanged, noted.
    let dump = "\t/opt/elsewhere/prog+0x1234 pc=0x5555\nmodule /opt/elsewhere/prog base=0x5000\n";
    let out = run(&[], dump);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), dump);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no binary for /opt/elsewhere/prog"));
}
