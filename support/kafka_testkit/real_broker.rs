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
//!
//! The rule is `kafka_choice`'s (a build-dependency), without the Docker ping: whether
//! a daemon answers can change without a rebuild, so only `KATA_KAFKA=docker` counts.

fn main() {
    println!(
        "cargo::rerun-if-env-changed={}",
        kafka_choice::BOOTSTRAP_ENV
    );
    println!("cargo::rerun-if-env-changed={}", kafka_choice::FORCE_ENV);
    println!("cargo::rustc-check-cfg=cfg(real_broker)");
    // A KATA_KAFKA that makes no sense: no real broker here; the tests say why.
    let real = kafka_choice::choose_without_docker()
        .is_ok_and(|choice| choice.kind != kafka_choice::BrokerKind::Mock);
    if real {
        println!("cargo::rustc-cfg=real_broker");
    }
}
