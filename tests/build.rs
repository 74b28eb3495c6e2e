//! Compiles the C fixtures (real C against `capi/include/gort.h`).
fn main() {
    println!("cargo:rerun-if-changed=c/foreign.c");
    println!("cargo:rerun-if-changed=c/example.c");
    println!("cargo:rerun-if-changed=c/idle.c");
    println!("cargo:rerun-if-changed=c/blocking.c");
    println!("cargo:rerun-if-changed=../capi/include/gort.h");
    cc::Build::new()
        .file("c/foreign.c")
        .file("c/example.c")
        .file("c/idle.c")
        .file("c/blocking.c")
        .include("../capi/include")
        .flag_if_supported("-std=c11")
        .warnings(true)
        .extra_warnings(true)
        .compile("gort_c_fixtures");
}
