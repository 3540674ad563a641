//! The implementation the tests grade: the steps in `lib.rs`, or with
//! `--features reference` the reference solution's (`solutions::batch`).

#[cfg(not(feature = "reference"))]
pub use crate::{clean, create_session, join_customers, read_sources, summarize, write_parquet};
#[cfg(feature = "reference")]
pub use solutions::batch::{
    clean, create_session, join_customers, read_sources, summarize, write_parquet,
};
