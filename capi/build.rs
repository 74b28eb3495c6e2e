//! Gives libgort.so its soname, so programs record the ABI version they
//! were linked against: `libgort.so.<major>`, or `libgort.so.0.<minor>`
//! while the major version is 0 (each 0.x release may break the ABI).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soname = if major == "0" {
        format!("libgort.so.0.{minor}")
    } else {
        format!("libgort.so.{major}")
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rerun-if-changed=build.rs");
}
