//! The implementation the tests grade: the steps in `lib.rs`, or with
//! `--features reference` the reference solution's (`solutions::batch`).

#[cfg(not(feature = "reference"))]
pub use crate::{clean, create_session, join_customers, read_sources, summarize, write_parquet};
#[cfg(feature = "reference")]
pub use solutions::batch::{
    clean, create_session, join_customers, read_sources, summarize, write_parquet,
};

/// The step tests: part of the library's own test binary, so that a save compiles one
/// crate (`cargo test -p batch_kata --lib`), not the library and then a test crate.
#[cfg(test)]
#[path = "../tests/steps.rs"]
mod steps;
