//! What the step tests of every kata share, so that a failure reads the same in each:
//!
//! - [`OkOrPanic::ok_or_panic`]: unwraps a `Result` or fails with `"{what}: {error}"`,
//!   the error in its Display form (`.unwrap()` would print its Debug form);
//! - [`assert_table`], [`assert_sorted_table`], [`assert_same_rows`]: compare tables and
//!   fail with the expected and the actual table, each printed once;
//! - [`assert_schema`] (names, types, nullability) and [`assert_columns`] (names and
//!   types): a schema compared as a table;
//! - [`decode_window`]: one message of the streaming kata's output topic, read back, and
//!   [`assert_same_windows`]: the windows compared, differences listed.
//!
//! Tests do not return `Result` (libtest would print the error with Debug): they call
//! `ok_or_panic("what was being done")` instead.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;

/// `Result::unwrap` for people: the error in its Display form, after what was being done.
pub trait OkOrPanic<T> {
    /// The value, or a panic with `"{what}: {error}"` (`{error:#}`: an `anyhow` error
    /// with its chain of causes).
    fn ok_or_panic(self, what: &str) -> T;
}

impl<T, E: Display> OkOrPanic<T> for Result<T, E> {
    #[track_caller]
    fn ok_or_panic(self, what: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{what}: {error:#}"),
        }
    }
}

/// The table `batches` print as (DataFusion's pretty format); `(no rows)` for no batch
/// at all (what `collect` gives for an empty result), which the pretty format would
/// draw as an empty frame without its columns.
pub fn table(batches: &[RecordBatch]) -> String {
    if batches.is_empty() {
        return NO_ROWS.to_string();
    }
    pretty_format_batches(batches)
        .ok_or_panic("formatting a table")
        .to_string()
}

/// What [`table`] prints for no batch.
pub const NO_ROWS: &str = "(no rows)";

/// [`table`] with the rows sorted (as text), so that row order does not matter.
pub fn sorted_table(batches: &[RecordBatch]) -> String {
    sort_rows(&table(batches))
}

/// The lines of a pretty table with the rows (between the header rule and the last
/// rule) sorted, as `assert_batches_sorted_eq!` does.
fn sort_rows(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.len() > 4 {
        let body = lines.len() - 1;
        lines[3..body].sort_unstable();
    }
    lines.join("\n")
}

#[track_caller]
fn tables_differ(what: &str, expected: &str, actual: &str) {
    if expected != actual {
        panic!("{what}: the tables differ\nexpected:\n{expected}\nactual:\n{actual}");
    }
}

/// Fails with both tables unless `actual` prints as `expected`, row for row.
#[track_caller]
pub fn assert_table(what: &str, expected: &[&str], actual: &[RecordBatch]) {
    tables_differ(what, &expected.join("\n"), &table(actual));
}

/// [`assert_table`] in any row order.
#[track_caller]
pub fn assert_sorted_table(what: &str, expected: &[&str], actual: &[RecordBatch]) {
    tables_differ(
        what,
        &sort_rows(&expected.join("\n")),
        &sorted_table(actual),
    );
}

/// Fails with both tables unless the two batches hold the same rows, in any order.
#[track_caller]
pub fn assert_same_rows(what: &str, expected: &RecordBatch, actual: &RecordBatch) {
    tables_differ(
        what,
        &sorted_table(std::slice::from_ref(expected)),
        &sorted_table(std::slice::from_ref(actual)),
    );
}

/// A schema as a table of its columns: name, type and (when `nullable`) nullability.
pub fn schema_table(schema: &Schema, nullable: bool) -> String {
    let rows: Vec<Vec<String>> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut row = vec![f.name().clone(), f.data_type().to_string()];
            if nullable {
                row.push(f.is_nullable().to_string());
            }
            row
        })
        .collect();
    let header: &[&str] = if nullable {
        &["name", "type", "nullable"]
    } else {
        &["name", "type"]
    };
    let columns: Vec<ArrayRef> = (0..header.len())
        .map(|c| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r[c]))) as ArrayRef)
        .collect();
    let fields: Vec<Field> = header
        .iter()
        .map(|h| Field::new(*h, DataType::Utf8, false))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .and_then(|batch| pretty_format_batches(&[batch]))
        .map_or_else(
            |e| format!("(cannot draw the schema: {e})"),
            |t| t.to_string(),
        )
}

/// Fails with both schemas as tables unless `actual` has `expected`'s columns, in the
/// same order, with the same types and nullability.
#[track_caller]
pub fn assert_schema(what: &str, expected: &Schema, actual: &Schema) {
    tables_differ(
        what,
        &schema_table(expected, true),
        &schema_table(actual, true),
    );
}

/// [`assert_schema`] on names and types only (`expected`: name and type of each column).
#[track_caller]
pub fn assert_columns(what: &str, expected: &[(&str, DataType)], actual: &Schema) {
    let expected = Schema::new(
        expected
            .iter()
            .map(|(name, data_type)| {
                datafusion::arrow::datatypes::Field::new(*name, data_type.clone(), true)
            })
            .collect::<Vec<_>>(),
    );
    tables_differ(
        what,
        &schema_table(&expected, false),
        &schema_table(actual, false),
    );
}

/// One message of the streaming kata's output topic, read back (the contract of its
/// step 6): key `"<window_start>|<category>"`, value a JSON object with the six fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// `window_start` in milliseconds since the epoch.
    pub start_ms: i64,
    pub category: String,
    pub order_count: i64,
    pub total_amount: f64,
    pub avg_amount: f64,
}

impl Window {
    /// (window start ms, category): how the expected windows are keyed.
    pub fn key(&self) -> (i64, String) {
        (self.start_ms, self.category.clone())
    }

    /// `total_amount` in cents.
    pub fn total_cents(&self) -> i64 {
        (self.total_amount * 100.0).round() as i64
    }
}

/// Reads one aggregate message, or says what is wrong with it (a key that is not
/// `"<window_start>|<category>"` of its own value included).
pub fn decode_window(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Window, String> {
    let key = String::from_utf8_lossy(key.unwrap_or_default()).into_owned();
    let text = String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("aggregate {key:?} is not JSON ({e}): {text}"))?;
    let field = |name: &str| {
        json.get(name)
            .ok_or_else(|| format!("aggregate {key:?} has no `{name}`: {text}"))
    };
    let wrong =
        |name: &str, kind: &str| format!("aggregate {key:?}: `{name}` is not {kind}: {text}");
    let start_text = field("window_start")?
        .as_str()
        .ok_or_else(|| wrong("window_start", "a string"))?;
    let start_ms = DateTime::parse_from_rfc3339(start_text)
        .map_err(|e| format!("aggregate {key:?}: window_start {start_text:?}: {e}"))?
        .timestamp_millis();
    let category = field("category")?
        .as_str()
        .ok_or_else(|| wrong("category", "a string"))?
        .to_string();
    let expected_key = format!("{start_text}|{category}");
    if key != expected_key {
        return Err(format!(
            "aggregate key {key:?} should be {expected_key:?} (window_start|category)"
        ));
    }
    let number = |name: &str| field(name)?.as_f64().ok_or_else(|| wrong(name, "a number"));
    Ok(Window {
        start_ms,
        order_count: field("order_count")?
            .as_i64()
            .ok_or_else(|| wrong("order_count", "an integer"))?,
        total_amount: number("total_amount")?,
        avg_amount: number("avg_amount")?,
        category,
    })
}

/// Windows keyed by (start in ms since the epoch, category), valued (order count,
/// total in cents): the shape of `fixtures::expected::StreamWindows::windows`.
pub type Windows = BTreeMap<(i64, String), (i64, i64)>;

/// Fails unless `actual` holds exactly the `expected` windows, listing the windows
/// missing, unexpected and different (at most 10 of each) instead of both maps.
#[track_caller]
pub fn assert_same_windows(expected: &Windows, actual: &Windows) {
    if expected == actual {
        return;
    }
    let name = |(start, category): &(i64, String)| {
        let start = DateTime::from_timestamp_millis(*start).map_or_else(
            || start.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        format!("{start}|{category}")
    };
    let value = |(count, cents): &(i64, i64)| {
        format!("{count} orders, {}.{:02}", cents / 100, (cents % 100).abs())
    };
    let mut lines = Vec::new();
    let mut section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            lines.push(format!("{title} ({}):", items.len()));
            lines.extend(items.iter().take(10).map(|i| format!("  {i}")));
            if items.len() > 10 {
                lines.push(format!("  … {} more", items.len() - 10));
            }
        }
    };
    section(
        "missing windows",
        expected
            .iter()
            .filter(|(k, _)| !actual.contains_key(*k))
            .map(|(k, v)| format!("{}: {}", name(k), value(v)))
            .collect(),
    );
    section(
        "unexpected windows",
        actual
            .iter()
            .filter(|(k, _)| !expected.contains_key(*k))
            .map(|(k, v)| format!("{}: {}", name(k), value(v)))
            .collect(),
    );
    section(
        "windows with other totals",
        expected
            .iter()
            .filter_map(|(k, v)| {
                let got = actual.get(k).filter(|got| *got != v)?;
                Some(format!(
                    "{}: expected {}, got {}",
                    name(k),
                    value(v),
                    value(got)
                ))
            })
            .collect(),
    );
    panic!(
        "the windows differ ({} expected, {} written)\n{}",
        expected.len(),
        actual.len(),
        lines.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn batch(ids: &[&str], counts: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(ids.to_vec())) as ArrayRef),
            ("n", Arc::new(Int64Array::from(counts.to_vec())) as ArrayRef),
        ])
        .ok_or_panic("test batch")
    }

    fn panic_text(f: impl FnOnce()) -> String {
        let payload =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn an_empty_result_is_said_in_words_and_still_differs_from_rows() {
        assert_eq!(table(&[]), NO_ROWS);
        let text = panic_text(|| {
            assert_sorted_table(
                "clean",
                &[
                    "+----+---+",
                    "| id | n |",
                    "+----+---+",
                    "| a  | 1 |",
                    "+----+---+",
                ],
                &[],
            )
        });
        assert!(text.ends_with("actual:\n(no rows)"), "{text}");
        // An empty batch still shows its columns.
        assert!(table(&[batch(&[], &[])]).contains("| id | n |"));
    }

    #[test]
    fn an_error_shows_in_its_display_form_after_what_was_done() {
        let failed: Result<(), datafusion::error::DataFusionError> = Err(
            datafusion::error::DataFusionError::Plan("no column `x`".into()),
        );
        let text = panic_text(|| failed.ok_or_panic("selecting x"));
        assert_eq!(text, "selecting x: Error during planning: no column `x`");
        assert_eq!(Ok::<_, String>(3).ok_or_panic("three"), 3);
    }

    #[test]
    fn a_table_mismatch_shows_each_table_once() {
        let expected = [
            "+----+---+",
            "| id | n |",
            "+----+---+",
            "| a  | 1 |",
            "+----+---+",
        ];
        assert_table("same", &expected, &[batch(&["a"], &[1])]);
        let text = panic_text(|| assert_table("counts", &expected, &[batch(&["a"], &[2])]));
        assert_eq!(
            text,
            "counts: the tables differ\nexpected:\n+----+---+\n| id | n |\n+----+---+\n| a  | 1 |\n\
             +----+---+\nactual:\n+----+---+\n| id | n |\n+----+---+\n| a  | 2 |\n+----+---+"
        );
        assert!(!text.contains("left"), "no assert_eq! repeat: {text}");
    }

    #[test]
    fn sorted_comparisons_ignore_row_order_only() {
        let ab = batch(&["a", "b"], &[1, 2]);
        let ba = batch(&["b", "a"], &[2, 1]);
        assert_same_rows("rows", &ab, &ba);
        assert_sorted_table(
            "rows",
            &[
                "+----+---+",
                "| id | n |",
                "+----+---+",
                "| b  | 2 |",
                "| a  | 1 |",
                "+----+---+",
            ],
            std::slice::from_ref(&ab),
        );
        let other = batch(&["a", "b"], &[1, 3]);
        let text = panic_text(|| assert_same_rows("rows", &ab, &other));
        assert!(text.starts_with("rows: the tables differ\nexpected:\n"));
    }

    #[test]
    fn schemas_compare_as_tables() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]);
        assert_schema("schema", &schema, &schema);
        assert_columns(
            "columns",
            &[("id", DataType::Utf8), ("n", DataType::Int64)],
            &schema,
        );
        let nullable_id = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let text = panic_text(|| assert_schema("schema", &schema, &nullable_id));
        assert!(
            text.contains("| id   | Utf8  | false    |")
                && text.contains("| id   | Utf8  | true     |"),
            "{text}"
        );
        let text = panic_text(|| assert_columns("columns", &[("id", DataType::Int32)], &schema));
        assert!(text.contains("| id   | Int32 |"), "{text}");
    }

    #[test]
    fn window_differences_are_listed_not_dumped() {
        let window = |minute: i64, category: &str| {
            (1_795_615_200_000 + minute * 60_000, category.to_string())
        };
        let expected = Windows::from([
            (window(0, "books"), (2, 3050)),
            (window(5, "toys"), (1, 100)),
            (window(10, "home"), (1, 5)),
        ]);
        assert_same_windows(&expected, &expected.clone());
        let mut actual = expected.clone();
        actual.remove(&window(5, "toys"));
        actual.insert(window(0, "books"), (2, 3051));
        actual.insert(window(15, "home"), (1, 5));
        let text = panic_text(|| assert_same_windows(&expected, &actual));
        assert_eq!(
            text,
            "the windows differ (3 expected, 3 written)\n\
             missing windows (1):\n  2026-11-25T14:05:00Z|toys: 1 orders, 1.00\n\
             unexpected windows (1):\n  2026-11-25T14:15:00Z|home: 1 orders, 0.05\n\
             windows with other totals (1):\n  2026-11-25T14:00:00Z|books: expected 2 orders, 30.50, got 2 orders, 30.51"
        );
    }

    #[test]
    fn windows_decode_and_keys_are_checked() {
        let value = br#"{"window_start":"2026-11-25T14:00:00.000Z","window_end":"2026-11-25T14:05:00.000Z","category":"books","order_count":2,"total_amount":30.5,"avg_amount":15.25}"#;
        let window = decode_window(Some(b"2026-11-25T14:00:00.000Z|books"), Some(value))
            .ok_or_panic("decoding");
        assert_eq!(
            window,
            Window {
                start_ms: 1_795_615_200_000,
                category: "books".into(),
                order_count: 2,
                total_amount: 30.5,
                avg_amount: 15.25,
            }
        );
        assert_eq!(window.total_cents(), 3050);
        let wrong_key = decode_window(Some(b"books"), Some(value)).unwrap_err();
        assert!(wrong_key.contains("window_start|category"), "{wrong_key}");
        let not_json = decode_window(Some(b"k"), Some(b"{")).unwrap_err();
        assert!(not_json.contains("is not JSON"), "{not_json}");
    }
}
