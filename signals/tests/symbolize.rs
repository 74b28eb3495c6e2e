//! `gort-symbolize` on a dump that names this test program's own code, as a
//! stripped binary's dump does (`?(...)` and `??:0 … pc=0x…`): the frames
//! come back with function and `file:line` in the same grammar, a foreign
//! build (build-id mismatch) is refused, bad input is reported.
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

/// A dump in the handler's format with one unnamed frame:
/// `symbolize_target`'s first instruction, in a running G (an exact pc).
/// Returns the dump, the frame's file line and the executable's path.
fn dump_of_target(build_id: Option<&str>) -> (String, String, String) {
    let mods = modules::init();
    let pc = symbolize_target as *const () as usize;
    let (m, _) = modules::module_of(pc).expect("our code is in a module");
    assert!(std::ptr::eq(m, &mods[0]), "the executable is module 0");
    let mut hex = [0u8; 80];
    let id = build_id
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(m.build_id_hex(&mut hex)).into_owned());
    let token = format!("\t??:0 fp=0x0 sp=0x1000 pc={pc:#x}");
    let mut dump = String::new();
    dump.push_str("fatal signal SIGSEGV: segmentation violation code=1(SEGV_MAPERR)\n\n");
    dump.push_str("goroutine 17 [running]:\n");
    dump.push_str("?(...)\n");
    dump.push_str(&format!("{token}\n\n"));
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
    let (dump, _, _) = dump_of_target(None);
    let exe = std::env::current_exe().unwrap();
    let out = run(&["--binary", exe.to_str().unwrap()], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The frame's two lines, rewritten in the same grammar.
    let want = "\nsymbolize::symbolize_target(...)\n\t";
    let at = stdout
        .find(want)
        .unwrap_or_else(|| panic!("not symbolized:\n{stdout}\nstderr: {stderr}"));
    let file_line = stdout[at + want.len() - 1..].lines().next().unwrap();
    assert!(file_line.contains("symbolize.rs:"), "{file_line}");
    assert!(file_line.contains(" fp=0x0 sp=0x1000 pc=0x"), "{file_line}");
    // Everything else is copied unchanged.
    assert!(stdout.contains("goroutine 17 [running]:"));
    assert!(stdout.contains("\nmodules:\n"));
    assert!(!stdout.contains("?(...)"), "{stdout}");
    assert_eq!(symbolize_target(2), 6);
}

#[test]
fn the_dumps_own_module_path_is_used_without_binary() {
    // The module list names this executable and its build-id: no --binary
    // needed on the machine that crashed.
    let (dump, _, _) = dump_of_target(None);
    let out = run(&[], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("\nsymbolize::symbolize_target(...)\n\t")
            && stdout.contains("symbolize.rs:"),
        "{stdout}"
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
    assert!(
        stdout.contains(&format!("?(...)\n{token}\n")),
        "rewritten with the wrong build:\n{stdout}"
    );
    assert!(stderr.contains("differs"), "{stderr}");
    assert!(stderr.contains("no binary for"), "{stderr}");
}

#[test]
fn addresses_outside_code_are_left_alone() {
    // A frame whose pc is in the module but not in its code (data) stays
    // as it is.
    let (mut dump, _, _) = dump_of_target(None);
    static DATA: [u8; 16] = [0; 16];
    let data = std::hint::black_box(&DATA).as_ptr() as usize;
    let frame = format!("x::y(...)\n\t??:0 fp=0x0 sp=0x0 pc={data:#x}\n");
    dump = dump.replacen(
        "\nmodules:",
        &format!("\ngoroutine 18 [sleep]:\n{frame}\nmodules:"),
        1,
    );
    let out = run(&[], &dump);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&frame), "{stdout}");
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
    let dump = "?(...)\n\t??:0 fp=0x0 sp=0x0 pc=0x5555\nmodule /opt/elsewhere/prog base=0x5000\n";
    let out = run(&[], dump);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), dump);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no binary for /opt/elsewhere/prog"));
}
