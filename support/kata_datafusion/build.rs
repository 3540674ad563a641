//! Links the dylib with `-Bsymbolic-functions` (as libLLVM.so is): its calls to its own
//! functions then bind to its own definitions when it is linked, instead of through
//! symbol lookups that the dynamic loader does at every start of a program using it
//! (about 214,000 of them, resolved up front as rustc links with `-z now`: some 60 ms
//! per test run; `LD_DEBUG=statistics`, `perf record`).
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // An ELF linker flag (GNU ld, lld); Apple's and Microsoft's linkers lack it.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly"
    ) {
        println!("cargo::rustc-link-arg=-Wl,-Bsymbolic-functions");
    }
}
