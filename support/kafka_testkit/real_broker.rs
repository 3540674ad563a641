//! Build script of the crates whose tests include some that need a real broker (a
//! process killed with SIGKILL and restarted must find the broker still there, which
//! the in-process mock cluster cannot promise). It sets `cfg(real_broker)` when the
//! tests will have one, so that those tests are written
//!
//! ```ignore
//! #[cfg_attr(not(real_broker), ignore = "needs a real broker: KAFKA_BOOTSTRAP_SERVERS or KATA_KAFKA=docker")]
//! ```
//!
//! and show up as `ignored` (never as `ok`) on the mock, and run on a real broker in the
//! same `cargo test` command. Changing the variables rebuilds the tests.

fn main() {
    println!("cargo::rerun-if-env-changed=KAFKA_BOOTSTRAP_SERVERS");
    println!("cargo::rerun-if-env-changed=KATA_KAFKA");
    println!("cargo::rustc-check-cfg=cfg(real_broker)");
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let forced = std::env::var("KATA_KAFKA").unwrap_or_default();
    let real = match forced.trim() {
        "mock" => false,
        "docker" => true,
        _ => set("KAFKA_BOOTSTRAP_SERVERS"),
    };
    if real {
        println!("cargo::rustc-cfg=real_broker");
    }
}
