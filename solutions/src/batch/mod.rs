//! Batch ETL, CSV → Parquet: the reference for `katas/batch_kata`.
//!
//! ```text
//! customers.csv ─┐ read (explicit schema) → clean (dropna, dropDuplicates) ─┐
//!                                                                           ├─ left join on customer_id
//! orders.csv ────┘ read (explicit schema) → clean (dropna, dropDuplicates) ─┘    → aggregate per customer
//!                                                                                 → Parquet (atomic overwrite)
//! ```
//!
//! - [`steps`]: steps 1 to 6 with the kata's signatures, the answers the step tests grade.
//! - [`pipeline`]: [`run`], the whole pipeline as the `batch_etl` binary runs it, with the
//!   counts an operator wants in the logs: the same steps as one plan, tuned for speed.
//! - `shuffle`: the optimizer rule that shuffles each source once, by customer.
//!
//! Both are re-exported here: `solutions::batch::clean`, `solutions::batch::run`.

pub mod pipeline;
mod shuffle;
pub mod steps;

pub use pipeline::*;
pub use steps::*;
