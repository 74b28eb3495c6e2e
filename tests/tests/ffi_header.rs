//! `capi/include/gort.h` against the Rust side of the C ABI.
//!
//! Constants: every status of `gort::status::ALL` must be in the header
//! with its value, and the header must have no other. Functions: every
//! `gort_*` function the Rust side exports must be declared, and nothing
//! else. Signatures: each function is pinned here twice, as a Rust type
//! (checked by rustc against the exported function) and as a C prototype
//! (checked by the C compiler against the header: a conflicting
//! redeclaration does not compile).

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;

type VoidFn = Option<unsafe extern "C" fn(*mut c_void)>;
type IntFn = Option<unsafe extern "C" fn(*mut c_void) -> c_int>;

/// Each exported function, its Rust type, and the C prototype it must have.
macro_rules! functions {
    ($($name:ident: $ty:ty => $proto:literal;)*) => {
        // rustc checks each function against the type written here.
        $(const _: $ty = gort::$name;)*
        const FUNCTIONS: &[(&str, &str)] = &[$((stringify!($name), $proto)),*];
    };
}

functions! {
    gort_callback: unsafe extern "C" fn(VoidFn, *mut c_void) -> c_int
        => "int gort_callback(void (*fn)(void *arg), void *arg);";
    gort_needm: extern "C" fn() -> c_int => "int gort_needm(void);";
    gort_dropm: extern "C" fn() -> c_int => "int gort_dropm(void);";
    gort_sleep_ns: extern "C" fn(u64) -> c_int => "int gort_sleep_ns(uint64_t ns);";
    gort_yield: extern "C" fn() -> c_int => "int gort_yield(void);";
    gort_syscall: unsafe extern "C" fn(VoidFn, *mut c_void) -> c_int
        => "int gort_syscall(void (*fn)(void *arg), void *arg);";
    gort_go: unsafe extern "C" fn(VoidFn, *mut c_void) -> i64
        => "int64_t gort_go(void (*fn)(void *arg), void *arg);";
    gort_spawn: unsafe extern "C" fn(IntFn, *mut c_void) -> i64
        => "int64_t gort_spawn(int (*fn)(void *arg), void *arg);";
    gort_join: unsafe extern "C" fn(i64, *mut c_int) -> c_int
        => "int gort_join(int64_t handle, int *result);";
    gort_dump: extern "C" fn(c_int) -> c_int => "int gort_dump(int fd);";
    gort_strerror: extern "C" fn(c_int) -> *const c_char
        => "const char *gort_strerror(int status);";
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn header() -> String {
    std::fs::read_to_string(root().join("capi/include/gort.h")).expect("read gort.h")
}

/// `GORT_*` names defined in the header's enum, with their values.
fn header_constants(h: &str) -> Vec<(String, i64)> {
    h.lines()
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(',');
            let (name, value) = l.split_once(" = ")?;
            name.starts_with("GORT_")
                .then(|| (name.to_owned(), value.parse().expect(l)))
        })
        .collect()
}

/// Names of the `gort_*` functions declared in the header (a line that
/// starts with a return type and names a `gort_` function).
fn header_functions(h: &str) -> Vec<String> {
    h.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with('/'))
        .filter_map(|l| {
            let at = l.find("gort_")?;
            let name: String = l[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            l[at + name.len()..].starts_with('(').then_some(name)
        })
        .collect()
}

/// Names of the functions the Rust side exports (`#[unsafe(no_mangle)]`
/// items of capi/src).
fn rust_exports() -> Vec<String> {
    let src = std::fs::read_to_string(root().join("capi/src/lib.rs")).expect("read capi");
    let mut out = Vec::new();
    let mut exported = false;
    for l in src.lines() {
        if l.trim() == "#[unsafe(no_mangle)]" {
            exported = true;
        } else if exported && let Some(at) = l.find("fn gort_") {
            let name: String = l[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
            exported = false;
        }
    }
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_header_declares_exactly_the_rust_statuses_and_functions() {
    let h = header();
    let consts = header_constants(&h);
    let want: Vec<(String, i64)> = gort::status::ALL
        .iter()
        .map(|(v, name, _)| (name.to_string(), i64::from(*v)))
        .collect();
    assert_eq!(consts, want, "gort.h's enum against gort::status::ALL");

    let declared = sorted(header_functions(&h));
    let exported = sorted(rust_exports());
    let pinned = sorted(FUNCTIONS.iter().map(|(n, _)| n.to_string()).collect());
    assert_eq!(
        declared, exported,
        "functions in gort.h vs exported by capi"
    );
    assert_eq!(
        pinned, exported,
        "functions pinned by this test vs exported"
    );
    for (name, proto) in FUNCTIONS {
        assert!(
            h.contains(proto),
            "gort.h does not declare `{proto}` ({name})"
        );
    }
}

#[test]
fn a_c_compiler_agrees_with_the_rust_side() {
    // Redeclare every function with the Rust side's prototype and assert
    // every constant's value, after including the header: a mismatch in a
    // type, an arity or a value fails to compile.
    let mut c = String::from("#include <stdint.h>\n#include \"gort.h\"\n");
    for (_, proto) in FUNCTIONS {
        c.push_str(proto);
        c.push('\n');
    }
    for (v, name, _) in gort::status::ALL {
        c.push_str(&format!("_Static_assert({name} == {v}, \"{name}\");\n"));
    }
    c.push_str("_Static_assert(sizeof(int) == 4, \"int\");\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("gort_header_check.c");
    std::fs::write(&file, &c).unwrap();
    let include = root().join("capi/include");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    for std in ["-std=c11", "-std=c99"] {
        let out = Command::new(&cc)
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
            ])
            .arg("-I")
            .arg(&include)
            .arg(&file)
            .output()
            .expect("run the C compiler (cc, or $CC)");
        assert!(
            out.status.success(),
            "{cc} {std} rejected gort.h against the Rust side:\n{}\n--- checked:\n{c}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
