//! The pipelines' decoder (`solutions::order_decoder`) against the kata steps it stands
//! in for, on generated events and on payloads chosen to find a difference: each must
//! give the same batch, bit for bit, and the same rejections with the same reasons.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use datafusion::arrow::array::{ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch};
use fixtures::events::{DirtyOptions, EventGenerator};
use kata_testkit::{OkOrPanic, table};
use solutions::order_decoder::{parse_lake_orders, parse_stream_orders};

const BASE: &str = r#"{"order_id":"ORD-00000042","customer_id":"CUST-01234","product_id":"PROD-0137","category":"books","quantity":2,"unit_price":19.99,"amount":39.98,"status":"completed","timestamp":"2026-11-25T14:03:07.123Z"}"#;

/// The base event with one piece of its text replaced.
fn with(from: &str, to: &str) -> Vec<u8> {
    assert!(BASE.contains(from), "{from} is not in the base event");
    BASE.replacen(from, to, 1).into_bytes()
}

/// Payloads where a typed decoder and the steps' decoders could part ways.
fn tricky_payloads() -> Vec<Vec<u8>> {
    let mut payloads: Vec<Vec<u8>> = vec![BASE.as_bytes().to_vec()];
    // Numbers: integers for floats, signs, long mantissas, halfway cases, overflow.
    for amount in [
        "40",
        "-0",
        "-0.0",
        "-12.5",
        "1E2",
        "0.1e1",
        "0.30000000000000004441",
        "1.00000000000000011102230246251565404236316680908203125",
        "9007199254740993",
        "9007199254740993.0",
        "123456789.123456789123",
        "1.7976931348623157e308",
        "4.9406564584124654e-324",
        "1e23",
        "8.589973e9",
        "2.2250738585072011e-308",
        "123456789012345678901234567890",
        "1e400",
        "-1e400",
        "\"39.98\"",
        "true",
        "null",
        "[39.98]",
    ] {
        payloads.push(with("39.98", amount));
    }
    for quantity in ["2.0", "\"2\"", "3000000000", "-1", "2e0", "null"] {
        payloads.push(with(
            r#""quantity":2"#,
            &format!(r#""quantity":{quantity}"#),
        ));
    }
    // Timestamps in the forms arrow-json or chrono read, and some neither reads.
    for time in [
        "\"2026-11-25T14:03:07Z\"",
        "\"2026-11-25T14:03:07.123456789Z\"",
        "\"2026-11-25T14:03:07.1234Z\"",
        "\"2026-11-25T14:03:07+01:00\"",
        "\"2026-11-25T14:03:07.123-05:30\"",
        "\"2026-11-25 14:03:07\"",
        "\"2026-11-25T14:03:07.123\"",
        "\"2026-11-25\"",
        "\"2026-12-31T23:59:60Z\"",
        "\"2026-11-25t14:03:07.123z\"",
        "\"not a time\"",
        "\"\"",
        "1764079387123",
        "null",
    ] {
        payloads.push(with("\"2026-11-25T14:03:07.123Z\"", time));
    }
    // Strings: escapes, non-ASCII, wrong types, nulls, missing fields.
    payloads.push(with("\"books\"", r#""bo\u006fks""#));
    payloads.push(with("\"books\"", r#""bo\"oks""#));
    payloads.push(with("\"books\"", "\"électronique 📦\""));
    payloads.push(with("\"books\"", r#""\ud800""#));
    payloads.push(with("\"books\"", "5"));
    payloads.push(with("\"books\"", "null"));
    payloads.push(with(r#""ORD-00000042""#, "null"));
    payloads.push(with(r#""CUST-01234""#, "null"));
    payloads.push(with(r#""ORD-00000042""#, r#""ORD-\n42""#));
    payloads.push(with(r#""product_id":"PROD-0137","#, ""));
    payloads.push(with(r#""status":"completed","#, ""));
    payloads.push(with(r#""category""#, r#""cat\u0065gory""#));
    // Objects: unknown and duplicate keys, whitespace, trailing data.
    payloads.push(with(
        r#"{"order_id""#,
        r#"{"extra":{"a":[1,{"b":null}]},"order_id""#,
    ));
    payloads.push(with(r#"{"order_id""#, r#"{"\ud800x":1,"order_id""#));
    payloads.push(with(r#"{"order_id""#, r#"{"category":"toys","order_id""#));
    payloads.push(format!("  {BASE}\n").into_bytes());
    payloads.push(format!("\u{feff}{BASE}").into_bytes());
    payloads.push(format!("{BASE}{BASE}").into_bytes());
    payloads.push(format!("{BASE} x").into_bytes());
    // Invalid UTF-8 in a value and in an unknown key.
    let mut bad_utf8 = with("\"books\"", "\"bo?ks\"");
    let at = bad_utf8
        .iter()
        .position(|&b| b == b'?')
        .expect("the marker");
    bad_utf8[at] = 0xff;
    payloads.push(bad_utf8);
    let mut bad_key = with(r#"{"order_id""#, r#"{"?":1,"order_id""#);
    let at = bad_key.iter().position(|&b| b == b'?').expect("the marker");
    bad_key[at] = 0xc3;
    payloads.push(bad_key);
    // Not an event at all.
    for other in [
        "",
        " ",
        "{}",
        "{not json}",
        "[1,2]",
        "42",
        "null",
        "\"text\"",
        "{",
        "{\"a\":}",
    ] {
        payloads.push(other.as_bytes().to_vec());
    }
    payloads
}

/// Generated records of every kind: valid, late, invalid and malformed.
fn generated_payloads(n: usize, dirty: DirtyOptions) -> Vec<Vec<u8>> {
    generated_with_seed(7, n, dirty)
}

fn generated_with_seed(seed: u64, n: usize, dirty: DirtyOptions) -> Vec<Vec<u8>> {
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
    EventGenerator::new(seed, start, 50.0, dirty)
        .ok_or_panic("making the event generator")
        .generate(n)
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

fn dirty() -> DirtyOptions {
    DirtyOptions {
        late_fraction: 0.05,
        invalid_fraction: 0.1,
        malformed_fraction: 0.1,
    }
}

#[track_caller]
fn assert_same_batch(what: &str, expected: &RecordBatch, actual: &RecordBatch) {
    if expected != actual {
        panic!(
            "{what}: the decoder's batch differs from the step's\nexpected (the step), schema {}:\n{}\nactual (the decoder), schema {}:\n{}",
            expected.schema(),
            table(std::slice::from_ref(expected)),
            actual.schema(),
            table(std::slice::from_ref(actual)),
        );
    }
}

fn check_stream(what: &str, payloads: &[Vec<u8>]) {
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let (expected, expected_bad) =
        solutions::kafka_stream::parse_orders(&payloads).ok_or_panic("kafka_stream::parse_orders");
    let (actual, actual_bad) =
        parse_stream_orders(&payloads).ok_or_panic("order_decoder::parse_stream_orders");
    assert_same_batch(what, &expected, &actual);
    let show = |bad: &[fixtures::events::Malformed]| {
        bad.iter()
            .map(|m| format!("{:>4} {}", m.index, m.reason))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        expected_bad == actual_bad,
        "{what}: the malformed payloads differ\nexpected (the step):\n{}\nactual (the decoder):\n{}",
        show(&expected_bad),
        show(&actual_bad)
    );
}

#[test]
fn stream_decoder_matches_step_3_on_tricky_payloads() {
    let payloads = tricky_payloads();
    check_stream("all tricky payloads at once", &payloads);
    for (i, payload) in payloads.iter().enumerate() {
        check_stream(
            &format!("tricky payload {i}: {}", String::from_utf8_lossy(payload)),
            std::slice::from_ref(payload),
        );
    }
}

#[test]
fn stream_decoder_matches_step_3_on_generated_events() {
    check_stream("clean", &generated_payloads(3_000, DirtyOptions::clean()));
    for seed in [7, 42, 143_670_316] {
        check_stream(
            &format!("dirty, seed {seed}"),
            &generated_with_seed(seed, 3_000, dirty()),
        );
    }
    let mut mixed = generated_payloads(1_000, dirty());
    mixed.extend(tricky_payloads());
    mixed.extend(generated_payloads(1_000, DirtyOptions::clean()));
    check_stream("generated and tricky, mixed", &mixed);
}

/// A raw micro-batch as the lake's step 2 makes it, with one record without a value.
fn raw_batch(payloads: &[Vec<u8>]) -> RecordBatch {
    let n = payloads.len() + 1;
    let partitions: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
    let offsets: Vec<i64> = (0..n).map(|i| 1_000 + i as i64).collect();
    let keys: Vec<Option<&[u8]>> = (0..n).map(|_| Some(b"k".as_slice())).collect();
    let mut values: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_slice())).collect();
    values.insert(n / 2, None);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(partitions)),
        Arc::new(Int64Array::from(offsets)),
        Arc::new(BinaryArray::from(keys)),
        Arc::new(BinaryArray::from(values)),
    ];
    RecordBatch::try_new(solutions::kafka_parquet::raw_schema(), columns)
        .ok_or_panic("building the raw batch")
}

fn check_lake(what: &str, payloads: &[Vec<u8>]) {
    use solutions::kafka_parquet::{parse_orders, to_event_time};
    let raw = raw_batch(payloads);
    let (parsed, expected_malformed) =
        parse_orders(&raw).ok_or_panic("kafka_parquet::parse_orders");
    let (expected, expected_bad_time) =
        to_event_time(&parsed).ok_or_panic("kafka_parquet::to_event_time");
    let (actual, actual_malformed, actual_bad_time) =
        parse_lake_orders(&raw).ok_or_panic("order_decoder::parse_lake_orders");
    assert_same_batch(&format!("{what}: orders"), &expected, &actual);
    assert_same_batch(
        &format!("{what}: malformed"),
        &expected_malformed,
        &actual_malformed,
    );
    assert_same_batch(
        &format!("{what}: bad timestamps"),
        &expected_bad_time,
        &actual_bad_time,
    );
    assert!(
        actual.num_rows() > 0 && actual_malformed.num_rows() > 0,
        "{what}: no orders or no malformed records to compare"
    );
}

#[test]
fn lake_decoder_matches_steps_3_and_4() {
    check_lake("tricky payloads", &tricky_payloads());
    for seed in [7, 42, 143_670_316] {
        check_lake(
            &format!("generated, dirty, seed {seed}"),
            &generated_with_seed(seed, 3_000, dirty()),
        );
    }
    let mut mixed = generated_payloads(1_000, DirtyOptions::clean());
    mixed.extend(tricky_payloads());
    check_lake("generated and tricky, mixed", &mixed);
}
