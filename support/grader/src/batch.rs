//! Grading of the batch kata's whole program: CSV → clean → join → aggregate → Parquet.
//!
//! The program runs once on fresh dirty data (a random seed: duplicate rows, empty
//! fields, orders of unknown customers) over an output folder that still holds an
//! earlier result. Its Parquet is read back with DataFusion and compared, value for
//! value, with the reference computed here by `solutions::batch`'s step functions on
//! the same files. Two short runs follow: one with a malformed amount (an error that
//! must leave the output as it was) and one with a missing input file (an error that
//! names it).
//!
//! Differences are diagnosed by counterfactual: the pipeline is also computed with the
//! classic mistakes (no dropDuplicates or no dropna, on either file; an inner join, or
//! customers joined to orders), and the customers on which the program's output agrees
//! with such a pipeline rather than the reference are reported as that mistake, under
//! the seed's step. What no mistake explains is reported per column, with expected |
//! actual tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::JoinType;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::*;
use fixtures::batch::{BatchCounts, BatchOptions, CUSTOMERS_HEADER, ORDERS_HEADER};
use solutions::batch as reference;
use solutions::batch::drop_nulls;

use crate::program::Run;
use crate::verdict::{side_by_side, text_table, thousands};
use crate::{Check, Options, Program, Verdict};

/// The size of the fresh data: every kind of dirt shows, and a verdict takes seconds.
const CUSTOMERS: u64 = 300;
const ORDERS: u64 = 2000;
/// The output folder's name, inside a folder of its own (so leftovers beside it show).
const OUTPUT: &str = "customer_summary";
/// Planted in the output folder before the run: an earlier run's file, same schema.
const STALE_FILE: &str = "part-0-from-last-run.parquet";
const STALE_ID: &str = "C999999";
/// The malformed value of the second run.
const BAD_AMOUNT: &str = "abc";
/// The input file name of the third run, which does not exist.
const MISSING_FILE: &str = "no_such_customers.csv";
/// Customers shown per finding.
const SAMPLE: usize = 3;

/// The output's columns and types, as step 5 states them.
fn contract() -> [(&'static str, DataType); 7] {
    fixtures::batch::summary_columns()
}

/// The columns compared value for value (processed_at is checked on its own).
const VALUE_COLUMNS: [&str; 6] = [
    "customer_id",
    "name",
    "city",
    "total_sales",
    "order_count",
    "avg_order_value",
];

fn contract_type(column: &str) -> Option<DataType> {
    contract()
        .into_iter()
        .find(|(name, _)| *name == column)
        .map(|(_, t)| t)
}

pub async fn grade(program: &Program, options: &Options) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("batch");
    let work = tempfile::Builder::new()
        .prefix("grade-batch-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let data = fresh_data(options.seed, &work.path().join("data")).await?;
    verdict.context(format!(
        "seed {} (--seed {} replays this data)",
        options.seed, options.seed
    ));
    verdict.context(data.describe());

    let lake = work.path().join("lake");
    let output = lake.join(OUTPUT);
    plant_stale_output(&output)?;
    let args = |customers: &Path, orders: &Path, output: &Path| {
        [
            "--customers".into(),
            customers.as_os_str().to_owned(),
            "--orders".into(),
            orders.as_os_str().to_owned(),
            "--output".into(),
            output.as_os_str().to_owned(),
        ]
    };
    verdict.context(format!(
        "run: PROGRAM --customers customers.csv --orders orders.csv --output {OUTPUT}/ \
         (which holds an earlier run's {STALE_FILE})"
    ));

    // Run 1: the real thing.
    let started = SystemTime::now();
    let run = run_to_end(
        program,
        args(&data.customers_csv, &data.orders_csv, &output),
        options,
    )
    .await?;
    let finished = SystemTime::now();
    if let Some(problem) = run.problem() {
        verdict.push(Check::fail("runs", problem).with_detail(run.stderr_tail()));
        not_run(&mut verdict, "not run: the program did not finish its run");
        keep(work, options, &mut verdict);
        return Ok(verdict);
    }

    // What run 1 left, read before the next run can change it.
    let layout = inspect_layout(&lake, &output)?;
    if layout.parquet_files.is_empty() {
        let found = match layout.entries.is_empty() {
            true => String::new(),
            false => format!(" (it holds {})", layout.entries.join(", ")),
        };
        verdict.push(Check::fail(
            "runs",
            format!(
                "exited 0 in {:.2} s but wrote no Parquet file to --output{found}",
                run.elapsed.as_secs_f64()
            ),
        ));
        not_run(&mut verdict, "not judged: no output");
        keep(work, options, &mut verdict);
        return Ok(verdict);
    }
    verdict.push(Check::pass(
        "runs",
        format!("exited 0 in {:.2} s", run.elapsed.as_secs_f64()),
    ));

    let snapshot = snapshot(&lake)?;
    let read_back = read_output(&layout).await;

    // Runs 2 and 3, side by side: a malformed amount, a missing file.
    let bad_orders = work.path().join("bad").join("orders.csv");
    let bad_line = write_malformed_orders(&data.orders_csv, &bad_orders)?;
    let missing = work.path().join("data").join(MISSING_FILE);
    let malformed_run = start(
        program,
        args(&data.customers_csv, &bad_orders, &output),
        options,
    )?;
    let missing_run = start(
        program,
        args(
            &missing,
            &data.orders_csv,
            &work.path().join("lake-missing").join(OUTPUT),
        ),
        options,
    )?;

    let outcome = match &read_back {
        Ok(output) => Some(compare(&data, output).await),
        Err(_) => None,
    };
    let malformed_run = malformed_run.await.context("waiting for the program")??;
    let missing_run = missing_run.await.context("waiting for the program")??;
    let outcome = outcome.transpose()?;
    let after_failure = snapshot_if_failed(&malformed_run, &lake)?;

    verdict.push(session_check(&layout));
    verdict.push(read_check(&malformed_run, bad_line, &missing_run));
    match (&read_back, &outcome) {
        (Ok(output), Some(outcome)) => {
            verdict.push(outcome.clean.clone());
            verdict.push(outcome.join.clone());
            verdict.push(outcome.aggregate.clone());
            verdict.push(processed_at_check(&output.batches, started, finished));
            verdict.push(schema_check(&output.schema));
        }
        _ => {
            for step in ["clean", "join", "aggregate", "processed_at", "schema"] {
                verdict.push(Check::skip(
                    step,
                    "not judged: the output could not be read",
                ));
            }
        }
    }
    verdict.push(write_check(
        &layout,
        read_back.as_ref().err(),
        &snapshot,
        after_failure.as_ref(),
    ));
    keep(work, options, &mut verdict);
    Ok(verdict)
}

/// Every check after `runs`, skipped.
fn not_run(verdict: &mut Verdict, why: &str) {
    for step in [
        "session",
        "read",
        "clean",
        "join",
        "aggregate",
        "processed_at",
        "schema",
        "write",
    ] {
        verdict.push(Check::skip(step, why));
    }
}

/// With `--keep`, the data and outputs stay, and the verdict says where.
fn keep(work: tempfile::TempDir, options: &Options, verdict: &mut Verdict) {
    if options.keep {
        let dir = work.keep();
        verdict.context(format!(
            "kept: {} (data/, lake/{OUTPUT}, bad/orders.csv)",
            dir.display()
        ));
    }
}

// ── Running the program ────────────────────────────────────────────────────────────

fn start(
    program: &Program,
    args: [std::ffi::OsString; 6],
    options: &Options,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Run>>> {
    let running = program.start(args)?;
    let deadline = options.run_deadline;
    Ok(tokio::task::spawn_blocking(move || running.wait(deadline)))
}

async fn run_to_end(
    program: &Program,
    args: [std::ffi::OsString; 6],
    options: &Options,
) -> anyhow::Result<Run> {
    start(program, args, options)?
        .await
        .context("waiting for the program")?
}

// ── The data and the reference ─────────────────────────────────────────────────────

/// The fresh files, their raw contents in memory, and the reference's result.
struct Data {
    seed: u64,
    data_seed: u64,
    counts: BatchCounts,
    customers_csv: PathBuf,
    orders_csv: PathBuf,
    raw_customers: DataFrame,
    raw_orders: DataFrame,
    facts: Facts,
    reference: Vec<RecordBatch>,
}

/// What cleaning removes and the left join keeps, in this data.
#[derive(Debug, Clone, Copy)]
struct Facts {
    duplicate_orders: usize,
    duplicate_customers: usize,
    orders_with_null: usize,
    customers_with_null: usize,
    /// Summary rows whose customer has no clean record (name is null).
    unknown_customers: usize,
    summary_rows: usize,
}

impl Facts {
    /// Every rule of steps 3 and 4 changes the result on this data.
    fn every_rule_shows(&self) -> bool {
        self.duplicate_orders > 0
            && self.duplicate_customers > 0
            && self.orders_with_null > 0
            && self.customers_with_null > 0
            && self.unknown_customers > 0
    }
}

impl Data {
    fn describe(&self) -> String {
        let c = &self.counts;
        let seed = match self.data_seed {
            s if s == self.seed => String::new(),
            s => format!(" (fixtures seed {s})"),
        };
        format!(
            "data{seed}: {} customer rows ({} duplicates, {} with an empty field), {} order rows \
             ({} duplicates, {} with an empty field, {} of unknown customers)",
            thousands(c.customer_rows),
            c.duplicate_customer_rows,
            c.customer_rows_with_null,
            thousands(c.order_rows),
            c.duplicate_order_rows,
            c.order_rows_with_null,
            c.orphan_orders,
        )
    }
}

/// Generates dirty data from `seed` (or, in the rare case where one kind of dirt is
/// missing from it, from a seed derived from it: still the same data for the same seed).
async fn fresh_data(seed: u64, dir: &Path) -> anyhow::Result<Data> {
    for attempt in 0..20u64 {
        let data_seed = seed.wrapping_add(attempt.wrapping_mul(1_000_000_007));
        let counts = fixtures::batch::generate(
            &BatchOptions {
                customers: CUSTOMERS,
                orders: ORDERS,
                seed: data_seed,
                dirty: true,
            },
            dir,
        )
        .context("generating the data")?;
        let data = load(seed, data_seed, counts, dir).await?;
        if data.facts.every_rule_shows() {
            return Ok(data);
        }
    }
    bail!("no seed derived from {seed} gave data with every kind of dirt")
}

async fn load(seed: u64, data_seed: u64, counts: BatchCounts, dir: &Path) -> anyhow::Result<Data> {
    let customers_csv = dir.join(fixtures::batch::CUSTOMERS_FILE);
    let orders_csv = dir.join(fixtures::batch::ORDERS_FILE);
    let ctx = reference::create_session();
    let (customers, orders) = reference::read_sources(
        &ctx,
        &customers_csv.to_string_lossy(),
        &orders_csv.to_string_lossy(),
    )
    .await
    .context("reading the generated data")?;
    let raw_customers = customers.cache().await?;
    let raw_orders = orders.cache().await?;

    let rows = |df: &DataFrame| df.clone().count();
    let (customers_read, orders_read) = (rows(&raw_customers).await?, rows(&raw_orders).await?);
    let customers_no_null = drop_nulls(raw_customers.clone())?.count().await?;
    let orders_no_null = drop_nulls(raw_orders.clone())?.count().await?;
    let customers_clean = reference::clean(raw_customers.clone())?.count().await?;
    let orders_clean = reference::clean(raw_orders.clone())?.count().await?;

    let joined = reference::join_customers(
        reference::clean(raw_orders.clone())?,
        reference::clean(raw_customers.clone())?,
    )?;
    let reference = reference::summarize(joined)?.collect().await?;
    let unknown_customers = reference
        .iter()
        .map(|b| b.column_by_name("name").map_or(0, |c| c.null_count()))
        .sum();
    let facts = Facts {
        duplicate_orders: orders_no_null - orders_clean,
        duplicate_customers: customers_no_null - customers_clean,
        orders_with_null: orders_read - orders_no_null,
        customers_with_null: customers_read - customers_no_null,
        unknown_customers,
        summary_rows: reference.iter().map(RecordBatch::num_rows).sum(),
    };
    Ok(Data {
        seed,
        data_seed,
        counts,
        customers_csv,
        orders_csv,
        raw_customers,
        raw_orders,
        facts,
        reference,
    })
}

/// A copy of orders.csv with a malformed amount in its middle; returns its line number.
fn write_malformed_orders(orders: &Path, to: &Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(orders)
        .with_context(|| format!("cannot read {}", orders.display()))?;
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines.len() / 2;
    let bad = format!("O9999999,C000001,Laptop,1,{BAD_AMOUNT},2024-06-01,completed");
    lines.insert(at, &bad);
    let dir = to.parent().context("a file in a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(to, lines.join("\r\n") + "\r\n")
        .with_context(|| format!("cannot write {}", to.display()))?;
    Ok(at + 1)
}

/// An earlier run's output: one Parquet file of the right schema, one row that must
/// not survive the overwrite.
fn plant_stale_output(output: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let schema = Arc::new(Schema::new(
        contract()
            .into_iter()
            .map(|(name, t)| Field::new(name, t, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![STALE_ID])),
        Arc::new(StringArray::from(vec!["Stale Row"])),
        Arc::new(StringArray::from(vec!["Last Run"])),
        Arc::new(Decimal128Array::from(vec![1_000i128]).with_precision_and_scale(20, 2)?),
        Arc::new(Int64Array::from(vec![1i64])),
        Arc::new(Decimal128Array::from(vec![10_000_000i128]).with_precision_and_scale(14, 6)?),
        Arc::new(TimestampNanosecondArray::from(vec![0i64]).with_timezone("+00:00")),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let path = output.join(STALE_FILE);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

// ── What the program wrote ─────────────────────────────────────────────────────────

/// The output folder as run 1 left it.
struct Layout {
    output: PathBuf,
    /// `None`: nothing at the output path.
    kind: Option<OutputKind>,
    /// Entries of the output folder (relative paths, files and folders), sorted.
    entries: Vec<String>,
    /// The Parquet files to read (not the planted one).
    parquet_files: Vec<PathBuf>,
    /// Entries beside the output folder.
    beside: Vec<String>,
    /// The compression codecs of the Parquet files' column chunks.
    codecs: BTreeSet<String>,
    unreadable_footers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Folder,
    File,
}

fn inspect_layout(lake: &Path, output: &Path) -> anyhow::Result<Layout> {
    let kind = match std::fs::metadata(output) {
        Ok(m) if m.is_dir() => Some(OutputKind::Folder),
        Ok(_) => Some(OutputKind::File),
        Err(_) => None,
    };
    let mut entries = Vec::new();
    let mut parquet_files = Vec::new();
    match kind {
        Some(OutputKind::Folder) => {
            for path in walk(output)? {
                let rel = path
                    .strip_prefix(output)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                if path.is_file() && rel.ends_with(".parquet") && rel != STALE_FILE {
                    parquet_files.push(path.clone());
                }
                entries.push(rel);
            }
        }
        Some(OutputKind::File) => parquet_files.push(output.to_path_buf()),
        None => {}
    }
    entries.sort();
    parquet_files.sort();
    let beside = list(lake)?
        .into_iter()
        .filter(|name| name != OUTPUT)
        .collect();
    let mut codecs = BTreeSet::new();
    let mut unreadable_footers = Vec::new();
    for file in &parquet_files {
        match codecs_of(file) {
            Ok(found) => codecs.extend(found),
            Err(_) => unreadable_footers.push(file_name(file)),
        }
    }
    Ok(Layout {
        output: output.to_path_buf(),
        kind,
        entries,
        parquet_files,
        beside,
        codecs,
        unreadable_footers,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn codecs_of(file: &Path) -> anyhow::Result<BTreeSet<String>> {
    let reader = SerializedFileReader::new(std::fs::File::open(file)?)?;
    Ok(reader
        .metadata()
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression().to_string()))
        .collect())
}

/// Every file and folder under `dir`, recursively.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    Ok(out)
}

fn list(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

/// The files (relative path → bytes) under `dir`, to tell whether a run changed them.
type Snapshot = BTreeMap<String, Vec<u8>>;

fn snapshot(dir: &Path) -> anyhow::Result<Snapshot> {
    let mut out = Snapshot::new();
    for path in walk(dir)? {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let bytes = match path.is_file() {
            true => {
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
            }
            false => Vec::new(),
        };
        out.insert(rel, bytes);
    }
    Ok(out)
}

/// After a run that failed as it should, what the output folder's parent holds.
fn snapshot_if_failed(run: &Run, lake: &Path) -> anyhow::Result<Option<Snapshot>> {
    match run.status.is_some_and(|s| !s.success()) {
        true => snapshot(lake).map(Some),
        false => Ok(None),
    }
}

/// The program's output, read back with DataFusion.
struct Output {
    schema: Schema,
    batches: Vec<RecordBatch>,
}

async fn read_output(layout: &Layout) -> Result<Output, String> {
    if layout.parquet_files.is_empty() {
        return Err("no Parquet file to read".into());
    }
    // Strings as written (Utf8), not as DataFusion prefers to read them (Utf8View).
    let config = SessionConfig::new().with_target_partitions(2).set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    let paths: Vec<String> = layout
        .parquet_files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let df = ctx
        // The files are named: read each, whatever its extension.
        .read_parquet(paths, ParquetReadOptions::default().file_extension(""))
        .await
        .map_err(|e| format!("DataFusion cannot read it: {e}"))?;
    let schema = df.schema().as_arrow().clone();
    let batches = df
        .collect()
        .await
        .map_err(|e| format!("DataFusion cannot read it: {e}"))?;
    Ok(Output { schema, batches })
}

// ── Comparing with the reference, by counterfactual ────────────────────────────────

/// A classic mistake, in the step where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mistake {
    OrdersDuplicates,
    CustomersDuplicates,
    OrdersNulls,
    CustomersNulls,
    InnerJoin,
    ReversedJoin,
}

use Mistake::*;

const CLEAN_MISTAKES: [Mistake; 4] = [
    OrdersDuplicates,
    CustomersDuplicates,
    OrdersNulls,
    CustomersNulls,
];
const JOIN_MISTAKES: [Mistake; 2] = [InnerJoin, ReversedJoin];

impl Mistake {
    /// The finding, in the learner's words, with the data's own count.
    fn finding(self, facts: &Facts) -> String {
        match self {
            OrdersDuplicates => format!(
                "{} duplicate orders kept (dropDuplicates on orders)",
                facts.duplicate_orders
            ),
            CustomersDuplicates => format!(
                "{} duplicate customer rows kept, so their orders count twice in the join \
                 (dropDuplicates on customers)",
                facts.duplicate_customers
            ),
            OrdersNulls => format!(
                "{} orders with an empty field kept (dropna on orders)",
                facts.orders_with_null
            ),
            CustomersNulls => format!(
                "{} customers with an empty field kept (dropna on customers)",
                facts.customers_with_null
            ),
            InnerJoin => "orders without a clean customer record lost (an inner join): \
                          left-join orders to customers to keep every order"
                .into(),
            ReversedJoin => "customers joined to orders (customers without orders kept, orders \
                             of unknown customers lost): left-join orders to customers"
                .into(),
        }
    }
}

/// Every pipeline with at least one mistake: each file cleaned in full, without
/// dropDuplicates, without dropna or not at all; a left, inner or reversed join.
fn counterfactuals() -> Vec<Vec<Mistake>> {
    let mut out = Vec::new();
    for orders in 0..4u8 {
        for customers in 0..4u8 {
            for join in [None, Some(InnerJoin), Some(ReversedJoin)] {
                let mut mistakes = Vec::new();
                if orders & 1 != 0 {
                    mistakes.push(OrdersDuplicates);
                }
                if customers & 1 != 0 {
                    mistakes.push(CustomersDuplicates);
                }
                if orders & 2 != 0 {
                    mistakes.push(OrdersNulls);
                }
                if customers & 2 != 0 {
                    mistakes.push(CustomersNulls);
                }
                mistakes.extend(join);
                if !mistakes.is_empty() {
                    out.push(mistakes);
                }
            }
        }
    }
    out
}

/// The pipeline with `mistakes`, built from the solutions' step functions.
async fn summarize_with(data: &Data, mistakes: &[Mistake]) -> anyhow::Result<Vec<RecordBatch>> {
    let made = |m: Mistake| mistakes.contains(&m);
    let clean = |df: DataFrame, duplicates: Mistake, nulls: Mistake| {
        let df = if made(nulls) { df } else { drop_nulls(df)? };
        if made(duplicates) {
            Ok(df)
        } else {
            df.distinct()
        }
    };
    let orders = clean(data.raw_orders.clone(), OrdersDuplicates, OrdersNulls)?;
    let customers = clean(
        data.raw_customers.clone(),
        CustomersDuplicates,
        CustomersNulls,
    )?;
    let joined = if made(InnerJoin) {
        join(orders, customers, JoinType::Inner)?
    } else if made(ReversedJoin) {
        join(orders, customers, JoinType::Right)?
    } else {
        reference::join_customers(orders, customers)?
    };
    Ok(reference::summarize(joined)?.collect().await?)
}

/// Step 4 with another join type; with `Right`, a customer without orders keeps its id.
fn join(
    orders: DataFrame,
    customers: DataFrame,
    how: JoinType,
) -> datafusion::error::Result<DataFrame> {
    let customers = customers.with_column_renamed("customer_id", "c_customer_id")?;
    let joined = orders.join(customers, how, &["customer_id"], &["c_customer_id"], None)?;
    let mut columns: Vec<Expr> = ORDERS_HEADER
        .iter()
        .map(|&c| match c {
            "customer_id" => {
                coalesce(vec![col("customer_id"), col("c_customer_id")]).alias("customer_id")
            }
            c => col(c),
        })
        .collect();
    columns.extend(CUSTOMERS_HEADER.iter().skip(1).map(|&c| col(c)));
    joined.select(columns)
}

type Key = Option<String>;
type Row = Vec<Option<String>>;

/// Summary rows by customer_id, each value formatted as the contract's type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    rows: BTreeMap<Key, Vec<Row>>,
}

impl Table {
    /// `columns` start with customer_id.
    fn new(batches: &[RecordBatch], columns: &[&str]) -> anyhow::Result<Table> {
        let mut rows: BTreeMap<Key, Vec<Row>> = BTreeMap::new();
        for batch in batches {
            let values = columns
                .iter()
                .map(|name| {
                    let array = batch
                        .column_by_name(name)
                        .with_context(|| format!("no column {name}"))?;
                    formatted(array, contract_type(name).as_ref())
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            for i in 0..batch.num_rows() {
                let row: Row = values.iter().map(|column| column[i].clone()).collect();
                rows.entry(row[0].clone()).or_default().push(row);
            }
        }
        rows.values_mut().for_each(|r| r.sort());
        Ok(Table { rows })
    }

    fn get(&self, key: &Key) -> Option<&Vec<Row>> {
        self.rows.get(key)
    }
}

/// The values of `array` as text, cast to `to` first when it has another type (a value
/// that does not cast reads as null).
fn formatted(array: &ArrayRef, to: Option<&DataType>) -> anyhow::Result<Vec<Option<String>>> {
    let array = match to {
        Some(t) if array.data_type() != t => {
            cast_with_options(array, t, &CastOptions::default()).unwrap_or_else(|_| array.clone())
        }
        _ => array.clone(),
    };
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    Ok((0..array.len())
        .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
        .collect())
}

/// The outcome of the value comparison, as three checks.
struct Outcome {
    clean: Check,
    join: Check,
    aggregate: Check,
}

async fn compare(data: &Data, output: &Output) -> anyhow::Result<Outcome> {
    let names: BTreeSet<&str> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    if !names.contains("customer_id") {
        let not_judged = |step| Check::skip(step, "not judged: the output has no customer_id");
        return Ok(Outcome {
            clean: not_judged("clean"),
            join: not_judged("join"),
            aggregate: Check::fail(
                "aggregate",
                "no customer_id column: one row per customer_id, name and city",
            ),
        });
    }
    let columns: Vec<&str> = VALUE_COLUMNS
        .iter()
        .copied()
        .filter(|c| names.contains(c))
        .collect();
    let expected = Table::new(&data.reference, &columns)?;
    let actual = Table::new(&output.batches, &columns)?;
    let keys: BTreeSet<Key> = expected
        .rows
        .keys()
        .chain(actual.rows.keys())
        .cloned()
        .collect();
    let differing: BTreeSet<Key> = keys
        .iter()
        .filter(|k| expected.get(k) != actual.get(k))
        .cloned()
        .collect();
    let facts = &data.facts;
    if differing.is_empty() {
        return Ok(Outcome {
            clean: done("clean", facts),
            join: done("join", facts),
            aggregate: Check::pass(
                "aggregate",
                format!(
                    "{} exact for all {}",
                    measures(&columns),
                    customers(facts.summary_rows)
                ),
            ),
        });
    }
    if actual.rows.is_empty() {
        let not_judged = |step| Check::skip(step, "not judged: the output has no rows");
        return Ok(Outcome {
            clean: not_judged("clean"),
            join: not_judged("join"),
            aggregate: Check::fail(
                "aggregate",
                format!(
                    "the output has no rows; expected {} (one per customer)",
                    thousands(facts.summary_rows as u64)
                ),
            ),
        });
    }

    let diagnosis = diagnose(data, &columns, &expected, &actual, &keys, &differing).await?;
    let view = View {
        columns: &columns,
        expected: &expected,
        actual: &actual,
    };
    Ok(Outcome {
        clean: step_check(
            "clean",
            &CLEAN_MISTAKES,
            &diagnosis,
            &view,
            &differing,
            facts,
        ),
        join: step_check("join", &JOIN_MISTAKES, &diagnosis, &view, &differing, facts),
        aggregate: aggregate_check(&diagnosis, &view, &differing, facts),
    })
}

/// Which mistakes explain the differences, and where each mistake would show.
struct Diagnosis {
    /// The mistakes of the pipeline that best explains the program's output (none when
    /// no pipeline explains more than it contradicts).
    mistakes: Vec<Mistake>,
    /// The differing customers on which the program agrees with that pipeline.
    explained: BTreeSet<Key>,
    /// For each mistake alone, the customers whose rows it changes.
    witnesses: BTreeMap<Mistake, BTreeSet<Key>>,
}

async fn diagnose(
    data: &Data,
    columns: &[&str],
    expected: &Table,
    actual: &Table,
    keys: &BTreeSet<Key>,
    differing: &BTreeSet<Key>,
) -> anyhow::Result<Diagnosis> {
    let mut best: Option<(i64, Vec<Mistake>, BTreeSet<Key>)> = None;
    let mut witnesses = BTreeMap::new();
    for mistakes in counterfactuals() {
        let variant = Table::new(&summarize_with(data, &mistakes).await?, columns)?;
        let all_keys = keys.iter().chain(variant.rows.keys());
        // It predicts a difference that the program does not show.
        let contradicted = all_keys
            .clone()
            .filter(|k| !differing.contains(*k) && variant.get(k) != expected.get(k))
            .collect::<BTreeSet<_>>()
            .len();
        let explained: BTreeSet<Key> = differing
            .iter()
            .filter(|k| variant.get(k) == actual.get(k))
            .cloned()
            .collect();
        if let [single] = mistakes[..] {
            let changed = all_keys
                .filter(|k| variant.get(k) != expected.get(k))
                .cloned()
                .collect();
            witnesses.insert(single, changed);
        }
        let score = explained.len() as i64 - contradicted as i64;
        let better = match &best {
            None => true,
            Some((s, m, _)) => score > *s || (score == *s && mistakes.len() < m.len()),
        };
        if !explained.is_empty() && score > 0 && better {
            best = Some((score, mistakes, explained));
        }
    }
    let (mistakes, explained) = best.map(|(_, m, e)| (m, e)).unwrap_or_default();
    Ok(Diagnosis {
        mistakes,
        explained,
        witnesses,
    })
}

/// The clean or join check: the mistakes of that step the program made, or what the
/// step got right where it shows.
fn step_check(
    step: &str,
    of_step: &[Mistake],
    diagnosis: &Diagnosis,
    view: &View,
    differing: &BTreeSet<Key>,
    facts: &Facts,
) -> Check {
    let made: Vec<Mistake> = diagnosis
        .mistakes
        .iter()
        .copied()
        .filter(|m| of_step.contains(m))
        .collect();
    let no_witness = BTreeSet::new();
    let witness = |m: &Mistake| diagnosis.witnesses.get(m).unwrap_or(&no_witness);
    if !made.is_empty() {
        let mut findings = Vec::new();
        let mut detail = String::new();
        for m in &made {
            let mut affected: Vec<Key> = diagnosis
                .explained
                .iter()
                .filter(|k| witness(m).contains(*k))
                .cloned()
                .collect();
            if affected.is_empty() && made.len() == 1 {
                affected = diagnosis.explained.iter().cloned().collect();
            }
            findings.push(format!(
                "{}: {} affected",
                m.finding(facts),
                customers(affected.len())
            ));
            detail.push_str(&view.sample(&m.finding(facts), &affected));
        }
        let shown = if made.len() == 1 {
            " (shown)"
        } else {
            " (shown below)"
        };
        return Check::fail(step, findings.join("; ") + shown).with_detail(detail);
    }
    // Not made: right wherever the data shows it, unless those customers differ anyway.
    let undecided: BTreeSet<&Key> = of_step
        .iter()
        .flat_map(|m| witness(m).iter())
        .filter(|k| differing.contains(*k) && !diagnosis.explained.contains(*k))
        .collect();
    let right: BTreeSet<&Key> = of_step
        .iter()
        .flat_map(|m| witness(m).iter())
        .filter(|k| !differing.contains(*k))
        .collect();
    if undecided.len() > right.len() {
        return Check::skip(
            step,
            format!(
                "not judged: the {} it changes differ for another reason (see aggregate)",
                customers(undecided.len())
            ),
        );
    }
    done(step, facts)
}

/// The clean or join step, done right on this data.
fn done(step: &str, facts: &Facts) -> Check {
    let summary = match step {
        "clean" => format!(
            "{} duplicate orders, {} duplicate customers, {} orders and {} customers with an \
             empty field dropped",
            facts.duplicate_orders,
            facts.duplicate_customers,
            facts.orders_with_null,
            facts.customers_with_null
        ),
        _ => format!(
            "orders of {} customer ids without a clean customer record kept (left join)",
            facts.unknown_customers
        ),
    };
    Check::pass(step, summary)
}

/// The aggregated columns among `columns`: `total_sales, order_count, avg_order_value`.
fn measures(columns: &[&str]) -> String {
    let keys = ["customer_id", "name", "city"];
    let measures: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !keys.contains(c))
        .collect();
    measures.join(", ")
}

/// What no mistake explains: per column, with samples.
fn aggregate_check(
    diagnosis: &Diagnosis,
    view: &View,
    differing: &BTreeSet<Key>,
    facts: &Facts,
) -> Check {
    let unexplained: Vec<&Key> = differing
        .iter()
        .filter(|k| !diagnosis.explained.contains(*k))
        .collect();
    if unexplained.is_empty() {
        let others = facts.summary_rows.saturating_sub(diagnosis.explained.len());
        return Check::pass(
            "aggregate",
            format!(
                "{} exact for the other {}",
                measures(view.columns),
                customers(others)
            ),
        );
    }
    let mut missing = Vec::new();
    let mut unexpected = Vec::new();
    let mut several = Vec::new();
    let mut by_column: BTreeMap<usize, Vec<Key>> = BTreeMap::new();
    for &key in &unexplained {
        match (view.expected.get(key), view.actual.get(key)) {
            (Some(_), None) => missing.push(key.clone()),
            (None, _) => unexpected.push(key.clone()),
            (Some(e), Some(a)) if e.len() != a.len() => several.push(key.clone()),
            (Some(e), Some(a)) => {
                for (column, _) in view.columns.iter().enumerate().skip(1) {
                    if e.iter().zip(a).any(|(e, a)| e[column] != a[column]) {
                        by_column.entry(column).or_default().push(key.clone());
                    }
                }
            }
        }
    }
    let mut findings = Vec::new();
    let mut detail = String::new();
    for (column, keys) in &by_column {
        let pattern = if view.all_without_customer(keys) {
            " (all of them ids without a clean customer record)"
        } else if view.all_off_by_last_digit(*column, keys) {
            " (by one in the last digit: rounded, through a float?)"
        } else {
            ""
        };
        let finding = format!(
            "{} differs for {}{pattern}",
            view.columns[*column],
            customers(keys.len())
        );
        detail.push_str(&view.sample(&finding, keys));
        findings.push(finding);
    }
    for (keys, what) in [
        (&missing, "missing"),
        (&unexpected, "not expected"),
        (&several, "with a wrong number of rows"),
    ] {
        if !keys.is_empty() {
            let finding = format!("{} {what}", customers(keys.len()));
            detail.push_str(&view.sample(&finding, keys));
            findings.push(finding);
        }
    }
    Check::fail("aggregate", findings.join(", ")).with_detail(detail)
}

fn customers(n: usize) -> String {
    match n {
        1 => "1 customer".into(),
        n => format!("{} customers", thousands(n as u64)),
    }
}

/// Expected | actual tables of a few customers.
struct View<'a> {
    columns: &'a [&'a str],
    expected: &'a Table,
    actual: &'a Table,
}

impl View<'_> {
    /// Every one of `keys` is, in the reference, an order's customer_id with no clean
    /// customer record (name null): a hint that the step mishandles the join's nulls.
    fn all_without_customer(&self, keys: &[Key]) -> bool {
        let Some(name) = self.columns.iter().position(|c| *c == "name") else {
            return false;
        };
        keys.len() > 1
            && keys.iter().all(|k| {
                self.expected
                    .get(k)
                    .is_some_and(|rows| rows.iter().all(|r| r[name].is_none()))
            })
    }

    /// Every one of `keys` differs in `column` by one unit in the last decimal place.
    fn all_off_by_last_digit(&self, column: usize, keys: &[Key]) -> bool {
        let value = |rows: Option<&Vec<Row>>| {
            let text = rows?.first()?[column].clone()?;
            let digits = text.split_once('.').map_or(0, |(_, d)| d.len());
            Some((text.parse::<f64>().ok()?, digits))
        };
        keys.iter().all(
            |k| match (value(self.expected.get(k)), value(self.actual.get(k))) {
                (Some((e, digits)), Some((a, _))) => {
                    let unit = 10f64.powi(-(digits as i32));
                    digits > 0 && (e - a).abs() <= unit * 1.5
                }
                _ => false,
            },
        )
    }

    /// `title: 3 of 12 customers`, then the tables, with customer_id and the columns that
    /// differ for the customers shown.
    fn sample(&self, title: &str, keys: &[Key]) -> String {
        let shown: Vec<&Key> = keys.iter().take(SAMPLE).collect();
        if shown.is_empty() {
            return String::new();
        }
        let empty = Vec::new();
        let differs = |column: usize| {
            shown.iter().any(|k| {
                let (e, a) = (
                    self.expected.get(k).unwrap_or(&empty),
                    self.actual.get(k).unwrap_or(&empty),
                );
                e.len() != a.len() || e.iter().zip(a).any(|(e, a)| e[column] != a[column])
            })
        };
        let columns: Vec<usize> = (0..self.columns.len())
            .filter(|&c| c == 0 || differs(c))
            .collect();
        let mut left: Vec<Vec<String>> = Vec::new();
        let mut right: Vec<Vec<String>> = Vec::new();
        for key in &shown {
            let (e, a) = (
                self.expected.get(key).unwrap_or(&empty),
                self.actual.get(key).unwrap_or(&empty),
            );
            for i in 0..e.len().max(a.len()) {
                left.push(cells(e.get(i), key, &columns));
                right.push(cells(a.get(i), key, &columns));
            }
        }
        let names: Vec<&str> = columns.iter().map(|&c| self.columns[c]).collect();
        let (expected, actual) = (text_table(&names, &left), text_table(&names, &right));
        format!(
            "{title}: {} of {}\n{}\n",
            shown.len(),
            customers(keys.len()),
            side_by_side(&expected, &actual)
        )
    }
}

/// A row's cells in `columns`; `(no row)` where the row is absent.
fn cells(row: Option<&Row>, key: &Key, columns: &[usize]) -> Vec<String> {
    columns
        .iter()
        .enumerate()
        .map(|(shown, &c)| match (row, shown) {
            (Some(row), _) => row[c].clone().unwrap_or_else(|| "null".into()),
            (None, 0) => key.clone().unwrap_or_else(|| "null".into()),
            (None, 1) => "(no row)".into(),
            (None, _) => String::new(),
        })
        .collect()
}

// ── The other checks ───────────────────────────────────────────────────────────────

/// Step 1's visible effect: the Parquet is Snappy-compressed.
fn session_check(layout: &Layout) -> Check {
    if layout.codecs.is_empty() {
        return Check::skip("session", "not judged: no Parquet data to look at");
    }
    let others: Vec<&String> = layout.codecs.iter().filter(|c| *c != "SNAPPY").collect();
    match others.is_empty() {
        true => Check::pass(
            "session",
            "Parquet written with Snappy, Spark's default codec",
        ),
        false => Check::fail(
            "session",
            format!(
                "Parquet written with {}: set datafusion.execution.parquet.compression to \
                 snappy in the session config",
                others
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// Step 2: a missing file and a malformed value are errors, the missing file named.
fn read_check(malformed: &Run, bad_line: usize, missing: &Run) -> Check {
    let mut problems = Vec::new();
    let mut detail = String::new();
    if missing.success() {
        problems.push(format!(
            "a missing customers file was read as an empty table (exit 0): check that each \
             input is a file and fail naming it ({MISSING_FILE})"
        ));
    } else if missing.timed_out() {
        problems.push(format!(
            "with a missing customers file, the program {}",
            missing.problem().unwrap_or_default()
        ));
    } else if !(missing.stderr.contains(MISSING_FILE) || missing.stdout.contains(MISSING_FILE)) {
        problems.push(format!(
            "a missing customers file is an error, but it does not name the file: {}",
            missing.problem().unwrap_or_default()
        ));
        detail.push_str(&format!(
            "With --customers …/{MISSING_FILE}, stderr ended with:\n{}\n",
            missing.stderr_tail()
        ));
    }
    if malformed.success() {
        problems.push(format!(
            "a malformed amount ({BAD_AMOUNT:?} on line {bad_line} of orders.csv) was accepted \
             (exit 0): read amount as Decimal128(10, 2) with an explicit schema"
        ));
    } else if malformed.timed_out() {
        problems.push(format!(
            "with a malformed amount, the program {}",
            malformed.problem().unwrap_or_default()
        ));
    }
    match problems.is_empty() {
        true => Check::pass(
            "read",
            "a missing file (named) and a malformed amount are errors",
        ),
        false => Check::fail("read", problems.join("; ")).with_detail(detail),
    }
}

/// Step 5: one UTC instant for every row, taken while the program ran.
fn processed_at_check(batches: &[RecordBatch], started: SystemTime, finished: SystemTime) -> Check {
    let check = |ok, summary: String| Check::of(ok, "processed_at", summary);
    let mut values = Vec::new();
    let mut nulls = 0;
    for batch in batches {
        let Some(column) = batch.column_by_name("processed_at") else {
            return check(false, "no processed_at column".into());
        };
        let tz = match column.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            other => {
                return check(
                    false,
                    format!("processed_at is {other}: expected a UTC timestamp (now())"),
                );
            }
        };
        match tz.as_deref() {
            None => {
                return check(
                    false,
                    "processed_at has no time zone, so it is a wall-clock time, not an instant: \
                     cast now() to Timestamp(Nanosecond, \"+00:00\")"
                        .into(),
                );
            }
            Some(tz) if !is_utc(tz) => {
                return check(
                    false,
                    format!("processed_at is in time zone {tz}: expected UTC (\"+00:00\")"),
                );
            }
            _ => {}
        }
        let Ok(nanos) = datafusion::arrow::compute::cast(
            column,
            &DataType::Timestamp(TimeUnit::Nanosecond, tz),
        ) else {
            return check(false, "processed_at cannot be read as nanoseconds".into());
        };
        let nanos = nanos.as_primitive::<TimestampNanosecondType>();
        nulls += nanos.null_count();
        values.extend(nanos.iter().flatten());
    }
    if nulls > 0 {
        return check(false, format!("{nulls} rows have no processed_at"));
    }
    let distinct: BTreeSet<i64> = values.iter().copied().collect();
    let Some(&first) = distinct.first() else {
        return Check::skip("processed_at", "not judged: no rows");
    };
    if distinct.len() > 1 {
        return check(
            false,
            format!(
                "{} different values from {} to {}: one instant for the whole run (now() is \
                 fixed when the query starts)",
                distinct.len(),
                instant(first),
                instant(*distinct.last().unwrap_or(&first))
            ),
        );
    }
    let (from, to) = (nanos_since_epoch(started), nanos_since_epoch(finished));
    // A coarser unit truncates: compare at the second's start.
    let from = from - from.rem_euclid(1_000_000_000);
    if !(from..=to).contains(&first) {
        let off = (first - from) as f64 / 3.6e12;
        let hint = match off.abs() >= 0.9 && (off - off.round()).abs() < 0.1 {
            true => format!(" (off by {:+} h: a local time labelled UTC?)", off.round()),
            false => String::new(),
        };
        return check(
            false,
            format!(
                "{} is not within this run ({} to {}){hint}",
                instant(first),
                instant(from),
                instant(to)
            ),
        );
    }
    check(
        true,
        format!(
            "one UTC instant for all {} rows, within this run ({})",
            thousands(values.len() as u64),
            instant(first)
        ),
    )
}

fn is_utc(tz: &str) -> bool {
    matches!(tz, "+00:00" | "UTC" | "Z" | "+00" | "Etc/UTC")
}

fn nanos_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as i64
}

fn instant(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

/// Steps 4 and 5: the output's columns, named and typed as the contract says.
fn schema_check(schema: &Schema) -> Check {
    let contract = contract();
    let expected: Vec<&str> = contract.iter().map(|(n, _)| *n).collect();
    let actual: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut problems = Vec::new();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|c| !actual.contains(c))
        .collect();
    let extra: Vec<&str> = actual
        .iter()
        .copied()
        .filter(|c| !expected.contains(c))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        problems.push(format!("not asked for: {}", extra.join(", ")));
    }
    if missing.is_empty() && extra.is_empty() && actual != expected {
        problems.push(format!(
            "columns in another order: {} (expected {})",
            actual.join(", "),
            expected.join(", ")
        ));
    }
    for (name, want) in &contract {
        let Ok(field) = schema.field_with_name(name) else {
            continue;
        };
        if !same_type(field.data_type(), want) {
            let hint = match (*name, field.data_type()) {
                ("total_sales" | "avg_order_value", DataType::Float64 | DataType::Float32) => {
                    ": money stays decimal (amount declared Decimal128(10, 2), no float on the way)"
                }
                ("processed_at", DataType::Timestamp(_, None)) => ": cast now() to a UTC timestamp",
                _ => "",
            };
            problems.push(format!(
                "{name} is {}, expected {want}{hint}",
                field.data_type()
            ));
        }
    }
    match problems.is_empty() {
        true => Check::pass("schema", "the 7 columns, named and typed as asked"),
        false => Check::fail("schema", problems.join("; ")).with_detail(format!(
            "expected: {}\nactual:   {}",
            describe_schema(contract.iter().map(|(n, t)| (*n, t))),
            describe_schema(
                schema
                    .fields()
                    .iter()
                    .map(|f| (f.name().as_str(), f.data_type()))
            )
        )),
    }
}

/// Types as the contract means them: a UTC zone may be spelled `+00:00` or `UTC`.
fn same_type(actual: &DataType, expected: &DataType) -> bool {
    match (actual, expected) {
        (DataType::Timestamp(u1, Some(z1)), DataType::Timestamp(u2, Some(z2))) => {
            u1 == u2 && (z1 == z2 || (is_utc(z1) && is_utc(z2)))
        }
        _ => actual == expected,
    }
}

fn describe_schema<'a>(fields: impl Iterator<Item = (&'a str, &'a DataType)>) -> String {
    fields
        .map(|(n, t)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Step 6: a folder of Parquet files that replaced the earlier one, nothing left beside
/// it, and a failed run that left it as it was.
fn write_check(
    layout: &Layout,
    unreadable: Option<&String>,
    before: &Snapshot,
    after_failure: Option<&Snapshot>,
) -> Check {
    let mut problems = Vec::new();
    match layout.kind {
        None => problems.push(format!(
            "nothing at the output path: write a folder of Parquet files at --output ({})",
            layout.output.display()
        )),
        Some(OutputKind::File) => problems.push(
            "the output is a single file: write a folder of Parquet files (a path ending in /)"
                .into(),
        ),
        Some(OutputKind::Folder) => {
            if layout.entries.iter().any(|e| e == STALE_FILE) {
                problems.push(format!(
                    "the earlier run's {STALE_FILE} is still in the output: overwrite replaces \
                     the whole folder"
                ));
            }
            let others: Vec<&String> = layout
                .entries
                .iter()
                .filter(|e| !e.ends_with(".parquet"))
                .collect();
            if !others.is_empty() {
                problems.push(format!(
                    "not Parquet files in the output: {}",
                    others
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if layout.parquet_files.is_empty() {
                problems.push("no Parquet file in the output".into());
            }
        }
    }
    if !layout.beside.is_empty() {
        problems.push(format!(
            "left beside the output: {}",
            layout.beside.join(", ")
        ));
    }
    if !layout.unreadable_footers.is_empty() {
        problems.push(format!(
            "not Parquet: {}",
            layout.unreadable_footers.join(", ")
        ));
    } else if let Some(why) = unreadable {
        problems.push(why.clone());
    }
    let mut failed_run_ok = false;
    if let Some(after) = after_failure {
        if after == before {
            failed_run_ok = true;
        } else if !after.contains_key(OUTPUT) {
            problems.push(
                "a failed run (the malformed amount) deleted the output: write beside it and \
                 swap the new folder in only when it is complete"
                    .to_string(),
            );
        } else {
            let changed: BTreeSet<&String> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            let shown: Vec<&str> = changed.iter().take(3).map(|s| s.as_str()).collect();
            problems.push(format!(
                "a failed run (the malformed amount) changed the output ({}{}): write beside \
                 it and swap the new folder in only when it is complete",
                shown.join(", "),
                if changed.len() > 3 { ", …" } else { "" }
            ));
        }
    }
    if !problems.is_empty() {
        return Check::fail("write", problems.join("; "));
    }
    let files = layout.parquet_files.len();
    let failure = match failed_run_ok {
        true => ", and a failed run left it as it was",
        false => "",
    };
    Check::pass(
        "write",
        format!(
            "a folder of {files} Parquet file{} replaced the earlier output{failure}",
            if files == 1 { "" } else { "s" }
        ),
    )
}
