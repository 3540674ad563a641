//! DataFusion for the katas, built once as a shared library.
//!
//! Every crate of the workspace depends on this one under the name `datafusion`
//! (see the root `Cargo.toml`), so `use datafusion::prelude::*` works as usual
//! while a change to a kata only relinks that kata against this library.

pub use datafusion::*;
