//! Order events from their JSON payloads straight into Arrow columns: the one decoder
//! of both streaming pipelines (`kafka_stream` and `kafka_to_parquet`).
//!
//! The kata steps decode the way a learner would (arrow-json's `ReaderBuilder` in the
//! streaming kata's step 3, `serde_json` into an owned `OrderEvent` in the lake kata's);
//! the pipelines decode millions of events, so they call this instead: one pass of a
//! typed serde decoder over each payload into [`OrderRef`], whose strings borrow from the
//! payload, appended straight to Arrow builders ([`OrderColumns`]): no allocation per
//! message. The results are the steps' own, row for row and reason for reason, because
//! every payload the fast pass does not take as it is goes through the step itself:
//!
//! - [`parse_stream_orders`] is the streaming kata's `parse_orders`. Its fast pass
//!   ([`read_stream_order`]) reads a payload in the layout `serde_json` writes events in
//!   with a one-pass scanner, any other with `serde_json`, then the two prices again
//!   from their text, correctly rounded like arrow-json's; a payload it does not read
//!   (malformed, an unknown key, an escaped string, a value arrow-json would coerce) goes
//!   to `kafka_stream::parse_orders`, and the two are merged in input order. The
//!   `kafka_stream` pipeline calls the fast pass itself, one payload at a time, and
//!   feeds its windows without building the batch.
//! - [`parse_lake_orders`] is the lake kata's steps 3 and 4 (`parse_orders`, then
//!   `to_event_time`) in one pass. It reads with `serde_json`, the step's own parser, so
//!   values and error messages are the step's; a payload the borrowing struct does not
//!   take (an escaped string, an unknown key) is read into the step's `OrderEvent`.

use std::sync::{Arc, LazyLock};

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
};
use serde::Deserialize;

/// One order event, its strings borrowed from the payload: `fixtures::events::OrderEvent`
/// without an allocation (same fields, same types). A string with an escape sequence
/// cannot be borrowed, and an unknown key is refused (so that the object is flat and each
/// key appears once in the text): such a payload takes the slower path of each pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRef<'a> {
    #[serde(borrow)]
    pub order_id: Option<&'a str>,
    #[serde(borrow)]
    pub customer_id: Option<&'a str>,
    pub product_id: &'a str,
    pub category: &'a str,
    pub quantity: i32,
    pub unit_price: f64,
    pub amount: f64,
    pub status: &'a str,
    /// As on the wire (RFC 3339); each pipeline parses it into its own time type.
    pub timestamp: &'a str,
}

impl<'a> OrderRef<'a> {
    /// The borrowed view of an owned event.
    pub fn of(event: &'a fixtures::events::OrderEvent) -> Self {
        Self {
            order_id: event.order_id.as_deref(),
            customer_id: event.customer_id.as_deref(),
            product_id: &event.product_id,
            category: &event.category,
            quantity: event.quantity,
            unit_price: event.unit_price,
            amount: event.amount,
            status: &event.status,
            timestamp: &event.timestamp,
        }
    }
}

/// Arrow builders for the event's fields but `timestamp` (each pipeline keeps its own
/// time column), in the schema's order.
pub struct OrderColumns {
    order_id: StringBuilder,
    customer_id: StringBuilder,
    product_id: StringBuilder,
    category: StringBuilder,
    quantity: Int32Builder,
    unit_price: Float64Builder,
    amount: Float64Builder,
    status: StringBuilder,
}

impl OrderColumns {
    /// Room for `rows` events without growing (ids and names are short).
    pub fn with_capacity(rows: usize) -> Self {
        let strings =
            |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Self {
            order_id: strings(12),
            customer_id: strings(10),
            product_id: strings(9),
            category: strings(8),
            quantity: Int32Builder::with_capacity(rows),
            unit_price: Float64Builder::with_capacity(rows),
            amount: Float64Builder::with_capacity(rows),
            status: strings(9),
        }
    }

    pub fn append(&mut self, order: &OrderRef<'_>) {
        self.order_id.append_option(order.order_id);
        self.customer_id.append_option(order.customer_id);
        self.product_id.append_value(order.product_id);
        self.category.append_value(order.category);
        self.quantity.append_value(order.quantity);
        self.unit_price.append_value(order.unit_price);
        self.amount.append_value(order.amount);
        self.status.append_value(order.status);
    }

    /// The eight columns, `order_id` to `status`.
    pub fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.order_id.finish()),
            Arc::new(self.customer_id.finish()),
            Arc::new(self.product_id.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.unit_price.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.status.finish()),
        ]
    }
}

// ---------------------------------------------------------------------------------
// The streaming pipeline: kafka_stream::parse_orders, fast
// ---------------------------------------------------------------------------------

#[cfg(feature = "kafka_stream")]
pub use stream::{parse_stream_orders, read_stream_order};

#[cfg(feature = "kafka_stream")]
mod stream {
    use super::*;
    use crate::kafka_stream::{Malformed, parse_orders, parsed_order_schema};
    use chrono::NaiveDate;
    use datafusion::arrow::array::TimestampMillisecondBuilder;
    use datafusion::arrow::array::timezone::Tz;
    use datafusion::arrow::compute::interleave_record_batch;
    use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;

    /// One payload as [`parse_stream_orders`]' fast pass reads it: the order, its prices
    /// read exactly, and its event time in milliseconds; `None` if the fast pass does not
    /// take it (then `parse_orders` decides).
    pub fn read_stream_order(payload: &[u8]) -> Option<(OrderRef<'_>, i64)> {
        static UTC: LazyLock<Tz> = LazyLock::new(|| "UTC".parse().expect("UTC is a time zone"));
        let order = match read_canonical(payload) {
            Some(order) => order,
            None => {
                let order = serde_json::from_slice::<OrderRef>(payload).ok()?;
                let (unit_price, amount) = exact_prices(payload)?;
                OrderRef {
                    unit_price,
                    amount,
                    ..order
                }
            }
        };
        let millis = match utc_millis(order.timestamp) {
            Some(millis) => millis,
            // The function arrow-json parses a Timestamp(Millisecond, "UTC") with.
            None => string_to_datetime(&*UTC, order.timestamp)
                .ok()?
                .timestamp_millis(),
        };
        Some((order, millis))
    }

    /// A time in the form the events write it, `YYYY-MM-DDTHH:MM:SS.sssZ`, in
    /// milliseconds since the epoch (what arrow's parser makes of it); `None` for any
    /// other form, which arrow's parser reads.
    fn utc_millis(text: &str) -> Option<i64> {
        let b = text.as_bytes();
        let layout = b.len() == 24
            && [
                (4, b'-'),
                (7, b'-'),
                (10, b'T'),
                (13, b':'),
                (16, b':'),
                (19, b'.'),
                (23, b'Z'),
            ]
            .iter()
            .all(|&(at, c)| b[at] == c);
        if !layout {
            return None;
        }
        let number = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0, |n: u32, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        let date = NaiveDate::from_ymd_opt(
            i32::try_from(number(0, 4)?).ok()?,
            number(5, 7)?,
            number(8, 10)?,
        )?;
        let time = date.and_hms_milli_opt(
            number(11, 13)?,
            number(14, 16)?,
            number(17, 19)?,
            number(20, 23)?,
        )?;
        Some(time.and_utc().timestamp_millis())
    }

    /// A payload in the layout `serde_json` writes an `OrderEvent` in (the fields in
    /// order, no whitespace, strings without escapes, numbers without exponents), read in
    /// one pass without a general JSON parser; `None` for any other payload (then
    /// `serde_json` reads it). What it takes, `serde_json` takes too, with the same
    /// values (the numbers read by Rust's correctly rounded parser, as [`exact_prices`]).
    fn read_canonical(payload: &[u8]) -> Option<OrderRef<'_>> {
        let mut rest = payload;
        let order = OrderRef {
            order_id: nullable_string(&mut rest, b"{\"order_id\":")?,
            customer_id: nullable_string(&mut rest, b",\"customer_id\":")?,
            product_id: string(&mut rest, b",\"product_id\":")?,
            category: string(&mut rest, b",\"category\":")?,
            quantity: number(&mut rest, b",\"quantity\":", false)?.parse().ok()?,
            unit_price: float(&mut rest, b",\"unit_price\":")?,
            amount: float(&mut rest, b",\"amount\":")?,
            status: string(&mut rest, b",\"status\":")?,
            timestamp: string(&mut rest, b",\"timestamp\":")?,
        };
        (rest == b"}").then_some(order)
    }

    /// After `key`: a string, or `null`.
    fn nullable_string<'a>(rest: &mut &'a [u8], key: &[u8]) -> Option<Option<&'a str>> {
        match rest.strip_prefix(key)?.strip_prefix(b"null") {
            Some(after) => {
                *rest = after;
                Some(None)
            }
            None => string(rest, key).map(Some),
        }
    }

    /// After `key`: a string without escapes or control characters.
    fn string<'a>(rest: &mut &'a [u8], key: &[u8]) -> Option<&'a str> {
        let value = rest.strip_prefix(key)?.strip_prefix(b"\"")?;
        let end = memchr::memchr(b'"', value)?;
        let text = &value[..end];
        if text.iter().any(|&b| b == b'\\' || b < 0x20) {
            return None;
        }
        *rest = &value[end + 1..];
        std::str::from_utf8(text).ok()
    }

    /// After `key`: a JSON number without exponent (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`, the
    /// fraction only if `fraction`), as text.
    fn number<'a>(rest: &mut &'a [u8], key: &[u8], fraction: bool) -> Option<&'a str> {
        let value = rest.strip_prefix(key)?;
        let digits = |from: usize| {
            value[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let sign = usize::from(value.first() == Some(&b'-'));
        let whole = digits(sign);
        if whole == 0 || (whole > 1 && value[sign] == b'0') {
            return None;
        }
        let mut len = sign + whole;
        if fraction && value.get(len) == Some(&b'.') {
            let decimals = digits(len + 1);
            if decimals == 0 {
                return None;
            }
            len += 1 + decimals;
        }
        *rest = &value[len..];
        // ASCII digits, a sign and a point: always UTF-8.
        std::str::from_utf8(&value[..len]).ok()
    }

    /// After `key`: a finite number, correctly rounded.
    fn float(rest: &mut &[u8], key: &[u8]) -> Option<f64> {
        number(rest, key, true)?
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
    }

    /// `kafka_stream::parse_orders`, the same batch and the same reasons, at a fraction of
    /// the cost: the payloads read as an [`OrderRef`] whose timestamp arrow parses are
    /// appended straight to the columns; the others (about 1 % in the benchmarks) go
    /// through `parse_orders` together, and the rows are merged in input order.
    pub fn parse_stream_orders(payloads: &[&[u8]]) -> Result<(RecordBatch, Vec<Malformed>)> {
        let mut columns = OrderColumns::with_capacity(payloads.len());
        let mut times = TimestampMillisecondBuilder::with_capacity(payloads.len());
        // Indices of the payloads left to the step.
        let mut others: Vec<usize> = Vec::new();
        for (index, payload) in payloads.iter().enumerate() {
            match read_stream_order(payload) {
                Some((order, millis)) => {
                    columns.append(&order);
                    times.append_value(millis);
                }
                None => others.push(index),
            }
        }
        let mut arrays = columns.finish();
        arrays.push(Arc::new(times.finish().with_timezone("UTC")));
        let fast = RecordBatch::try_new(parsed_order_schema(), arrays)
            .context("building the parsed orders")?;
        if others.is_empty() {
            return Ok((fast, Vec::new()));
        }

        // The step on the rest, then every row back in input order.
        let rest: Vec<&[u8]> = others.iter().map(|&i| payloads[i]).collect();
        let (slow, slow_malformed) = parse_orders(&rest)?;
        let malformed: Vec<Malformed> = slow_malformed
            .into_iter()
            .map(|m| Malformed {
                index: others[m.index],
                reason: m.reason,
            })
            .collect();
        // Usually all of them are malformed: the fast rows are then the orders, in order.
        if slow.num_rows() == 0 {
            return Ok((fast, malformed));
        }
        let mut order = Vec::with_capacity(fast.num_rows() + slow.num_rows());
        let (mut fast_row, mut slow_row) = (0, 0);
        let (mut other, mut bad) = (others.iter().peekable(), malformed.iter().peekable());
        for index in 0..payloads.len() {
            if other.next_if_eq(&&index).is_none() {
                order.push((0, fast_row));
                fast_row += 1;
            } else if bad.next_if(|m| m.index == index).is_none() {
                order.push((1, slow_row));
                slow_row += 1;
            }
        }
        anyhow::ensure!(
            fast_row == fast.num_rows() && slow_row == slow.num_rows(),
            "merging the decoded orders: {fast_row} of {} fast rows, {slow_row} of {} others",
            fast.num_rows(),
            slow.num_rows()
        );
        let orders = interleave_record_batch(&[&fast, &slow], &order)?;
        Ok((orders, malformed))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use chrono::{TimeZone, Utc};
        use fixtures::events::{DirtyOptions, EventGenerator};

        /// The one-pass scanner takes every event as the producer writes it (else the
        /// pipeline would be right but slow), with the values `serde_json` reads.
        #[test]
        fn the_scanner_takes_the_producers_layout_with_serde_jsons_values() {
            let start = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
            let records = EventGenerator::new(11, start, 50.0, DirtyOptions::clean())
                .expect("an event generator")
                .generate(2_000);
            for record in &records {
                let payload = &record.payload;
                let text = String::from_utf8_lossy(payload);
                let fast = read_canonical(payload)
                    .unwrap_or_else(|| panic!("the scanner did not take {text}"));
                let slow: OrderRef = serde_json::from_slice(payload).expect("valid JSON");
                let (unit_price, amount) = exact_prices(payload).expect("two prices");
                let slow = OrderRef {
                    unit_price,
                    amount,
                    ..slow
                };
                assert_eq!(fast, slow, "{text}");
                let (_, millis) = read_stream_order(payload).expect("read");
                let arrow = string_to_datetime(&"UTC".parse::<Tz>().unwrap(), fast.timestamp)
                    .expect("arrow reads the time")
                    .timestamp_millis();
                assert_eq!(millis, arrow, "{text}");
            }
            // And it leaves what is not in that layout to serde_json.
            for other in [
                &br#"{"order_id":"O1","customer_id":"C1"}"#[..],
                br#"{ "order_id":"O1"}"#,
                br#"{"order_id":"O\u0031"}"#,
            ] {
                assert!(read_canonical(other).is_none());
            }
        }
    }
}

/// `unit_price` and `amount` as arrow-json reads them: correctly rounded from their
/// text. serde_json's own reading can be one unit in the last place off for numbers of
/// more than 15 digits or an exponent beyond ±22 (without its `float_roundtrip` feature,
/// which would rebuild DataFusion's JSON crates), so the text is read again here.
/// Only for a payload [`OrderRef`] has read: an object of known keys and scalar values,
/// no escape in its strings, so `"amount":` can only be the key itself.
#[cfg(feature = "kafka_stream")]
fn exact_prices(payload: &[u8]) -> Option<(f64, f64)> {
    use memchr::memmem::Finder;
    static UNIT_PRICE: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"unit_price\":"));
    static AMOUNT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"amount\":"));
    let number = |key: &Finder| -> Option<f64> {
        let after = &payload[key.find(payload)? + key.needle().len()..];
        let start = after
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
        let text = &after[start..];
        let len = text
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(text.len());
        std::str::from_utf8(&text[..len]).ok()?.parse().ok()
    };
    Some((number(&UNIT_PRICE)?, number(&AMOUNT)?))
}

// ---------------------------------------------------------------------------------
// The lake: kafka_parquet's parse_orders and to_event_time in one pass
// ---------------------------------------------------------------------------------

#[cfg(feature = "kafka_parquet")]
pub use lake::parse_lake_orders;

#[cfg(feature = "kafka_parquet")]
mod lake {
    use super::*;
    use crate::kafka_parquet::{parsed_schema, raw_columns, rejected_schema, to_event_time};
    use chrono::DateTime;
    use datafusion::arrow::array::{Array, Int64Builder, TimestampMicrosecondBuilder};
    use datafusion::arrow::datatypes::SchemaRef;
    use fixtures::events::OrderEvent;

    /// The schema `to_event_time` gives the parsed orders (asked of the step itself).
    fn timed_schema() -> Result<SchemaRef> {
        static SCHEMA: LazyLock<std::result::Result<SchemaRef, String>> = LazyLock::new(|| {
            to_event_time(&RecordBatch::new_empty(parsed_schema()))
                .map(|(timed, _)| timed.schema())
                .map_err(|e| format!("{e:#}"))
        });
        SCHEMA
            .clone()
            .map_err(|e| anyhow::anyhow!("the schema of the timed orders: {e}"))
    }

    /// The lake's steps 3 and 4 in one pass: what `to_event_time(&parse_orders(raw)?.0)`
    /// returns (the orders with `event_time`, and the unparsable timestamps) and
    /// `parse_orders`' malformed records, as `(timed, malformed, bad_time)`, row for row
    /// and reason for reason, without a `String` per field.
    pub fn parse_lake_orders(raw: &RecordBatch) -> Result<(RecordBatch, RecordBatch, RecordBatch)> {
        let (partitions, offsets, values) = raw_columns(raw)?;

        let n = raw.num_rows();
        let mut out_partitions = Int32Builder::with_capacity(n);
        let mut out_offsets = Int64Builder::with_capacity(n);
        let mut columns = OrderColumns::with_capacity(n);
        let mut times = TimestampMicrosecondBuilder::with_capacity(n);
        let mut malformed = Rejected::default();
        let mut bad_time = Rejected::default();
        for row in 0..n {
            let (partition, offset) = (partitions.value(row), offsets.value(row));
            if values.is_null(row) {
                malformed.push(partition, offset, "malformed: no value");
                continue;
            }
            let payload = values.value(row);
            // An escaped string or an unknown key: the step's own type then (and its
            // error message for a malformed payload).
            let owned: OrderEvent;
            let order = match serde_json::from_slice::<OrderRef>(payload) {
                Ok(order) => order,
                Err(_) => match serde_json::from_slice::<OrderEvent>(payload) {
                    Ok(event) => {
                        owned = event;
                        OrderRef::of(&owned)
                    }
                    Err(e) => {
                        malformed.push(partition, offset, &format!("malformed: {e}"));
                        continue;
                    }
                },
            };
            match DateTime::parse_from_rfc3339(order.timestamp) {
                Ok(time) => {
                    out_partitions.append_value(partition);
                    out_offsets.append_value(offset);
                    columns.append(&order);
                    times.append_value(time.timestamp_micros());
                }
                Err(_) => bad_time.push(
                    partition,
                    offset,
                    &format!("unparsable timestamp: {:?}", order.timestamp),
                ),
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(out_partitions.finish()),
            Arc::new(out_offsets.finish()),
        ];
        arrays.extend(columns.finish());
        arrays.push(Arc::new(times.finish().with_timezone("UTC")));
        let timed = RecordBatch::try_new(timed_schema()?, arrays)?;
        Ok((timed, malformed.finish()?, bad_time.finish()?))
    }

    /// Rejected records as the steps return them (`rejected_schema`).
    #[derive(Default)]
    struct Rejected {
        partitions: Int32Builder,
        offsets: Int64Builder,
        reasons: StringBuilder,
    }

    impl Rejected {
        fn push(&mut self, partition: i32, offset: i64, reason: &str) {
            self.partitions.append_value(partition);
            self.offsets.append_value(offset);
            self.reasons.append_value(reason);
        }

        fn finish(mut self) -> Result<RecordBatch> {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(self.partitions.finish()),
                Arc::new(self.offsets.finish()),
                Arc::new(self.reasons.finish()),
            ];
            Ok(RecordBatch::try_new(rejected_schema(), columns)?)
        }
    }
}
