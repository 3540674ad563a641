//! # Batch ETL: CSV → Parquet, from a blank file
//!
//! Target: 15 minutes (expert: 10; interview limit: 20).
//!
//! ## What you may use
//!
//! The crates of this program's Cargo.toml, and nothing else:
//!
//! - `datafusion` (the workspace's build: `datafusion::arrow`, `datafusion::parquet`)
//! - `tokio` (`#[tokio::main]`)
//! - `anyhow` (errors with context)
//! - `clap` (derive)
//!
//! ## The task
//!
//! An online shop exports its customers and its orders as CSV every night. Write the job
//! that turns them into one Parquet table: sales per customer.
//!
//! The command line:
//!
//! ```text
//! batch_program --customers FILE --orders FILE --output DIR
//! ```
//!
//! ### Inputs
//!
//! Two CSV files (RFC 4180, a header line, an empty field is null):
//!
//! ```text
//! customers.csv  customer_id,name,email,city,signup_date
//! orders.csv     order_id,customer_id,product,quantity,amount,order_date,status
//! ```
//!
//! Read them with a schema you declare, not an inferred one:
//!
//! | customers   | type     | orders      | type                |
//! |-------------|----------|-------------|---------------------|
//! | customer_id | `Utf8`   | order_id    | `Utf8`              |
//! | name        | `Utf8`   | customer_id | `Utf8`              |
//! | email       | `Utf8`   | product     | `Utf8`              |
//! | city        | `Utf8`   | quantity    | `Int32`             |
//! | signup_date | `Date32` | amount      | `Decimal128(10, 2)` |
//! |             |          | order_date  | `Date32`            |
//! |             |          | status      | `Utf8`              |
//!
//! The data is dirty: rows repeated exactly, rows with an empty field, orders whose
//! customer does not exist.
//!
//! ### Rules
//!
//! 1. Run the job like Spark with adaptive execution: as many partitions as the machine
//!    has cores, joins and aggregations repartitioned, statistics collected, and Parquet
//!    compressed with Snappy (Spark's default codec).
//! 2. A path that is not an existing file is an error that names it. So is a value that
//!    does not parse as its column's type (an amount of `abc`, say).
//! 3. Clean each file the same way: drop every row that has a null in any column, and
//!    keep one copy of rows that are exactly identical (Spark: `dropDuplicates().dropna()`).
//! 4. Attach each order's customer: every clean order is kept, also when its customer is
//!    unknown (then the customer's columns are null). Spark: a left join on `customer_id`.
//! 5. One row per `(customer_id, name, city)`, with these columns in this order:
//!
//!    | column            | value                         | type                               |
//!    |-------------------|-------------------------------|------------------------------------|
//!    | customer_id       | the order's customer_id       | `Utf8`                             |
//!    | name              | the customer's                | `Utf8`                             |
//!    | city              | the customer's                | `Utf8`                             |
//!    | total_sales       | sum of `amount`               | `Decimal128(20, 2)`                |
//!    | order_count       | number of orders              | `Int64`                            |
//!    | avg_order_value   | average of `amount`           | `Decimal128(14, 6)`                |
//!    | processed_at      | when the job ran, in UTC; the same instant on every row | `Timestamp(Nanosecond, "+00:00")` |
//!
//!    (The decimal types are what DataFusion's `sum` and `avg` give for a
//!    `Decimal128(10, 2)`: money stays exact, and two correct answers agree to the cent.)
//! 6. Write the result as a folder of Parquet files at DIR, replacing whatever is there
//!    (Spark: `mode("overwrite")`), safely: afterwards DIR holds exactly this result; the
//!    new files are written beside DIR and swapped in only once complete; a run that
//!    fails leaves DIR as it was and nothing beside it. Exit 0 on success, non-zero with a
//!    message on failure.
//!
//! ## How it is graded
//!
//! ```text
//! cargo practice grade batch                 # this file
//! cargo practice grade batch --file F.rs     # any single-file program
//! ```
//!
//! The grader builds this file and runs it on fresh dirty data from a random seed
//! (printed; `--seed N` replays it), with DIR already holding an earlier run's files.
//! It reads your Parquet back and compares it, value for value, with the reference
//! pipeline's on the same files, then prints a checklist by rule: the codec (1), a
//! missing file and a malformed amount (2), cleaning (3), the join (4), the sums,
//! counts and averages, `processed_at` and the columns' names and types (5), and the
//! folder, the overwrite and a failed run (6). A difference is shown as expected | actual
//! rows, named where it can be ("35 duplicate orders kept", "an inner join").
//!
//! Replace `fn main() {}` below with your program.

fn main() {}
