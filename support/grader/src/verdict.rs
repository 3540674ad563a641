//! The grader's verdict: a checklist mapped to the seed's steps, each line something a
//! learner can act on, followed by the details (expected | actual tables) of each failure.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// Not run: an earlier check failed in a way that makes it meaningless, or it needs
    /// something this run does not have (e.g. a real broker). Never counts as a pass.
    Skip,
}

/// One line of the checklist: `✓ clean: 1,203 duplicate orders dropped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The seed's step this check grades, in the learner's words: `clean`, `join`,
    /// `window`, `partition by hour`, …
    pub step: String,
    pub status: Status,
    /// What was found, in one line.
    pub summary: String,
    /// Shown below the checklist for a failed check: tables, the first error, a sample.
    pub detail: Option<String>,
}

impl Check {
    pub fn pass(step: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(step, Status::Pass, summary)
    }

    pub fn fail(step: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(step, Status::Fail, summary)
    }

    pub fn skip(step: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(step, Status::Skip, summary)
    }

    /// A pass or a fail, as `ok` says.
    pub fn of(ok: bool, step: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(step, if ok { Status::Pass } else { Status::Fail }, summary)
    }

    fn new(step: impl Into<String>, status: Status, summary: impl Into<String>) -> Check {
        Check {
            step: step.into(),
            status,
            summary: summary.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Check {
        let detail = detail.into();
        if !detail.trim().is_empty() {
            self.detail = Some(detail);
        }
        self
    }

    fn mark(&self) -> &'static str {
        match self.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }

    /// `✗ clean: 12 duplicate orders kept`.
    pub fn line(&self) -> String {
        if self.summary.is_empty() {
            format!("{} {}", self.mark(), self.step)
        } else {
            format!("{} {}: {}", self.mark(), self.step, self.summary)
        }
    }
}

/// Everything one grading run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The kata's launcher name: `batch`, `kafka`, `parquet`.
    pub kata: String,
    /// What the run was made of: the seed, the data's size, the broker.
    pub context: Vec<String>,
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn new(kata: impl Into<String>) -> Verdict {
        Verdict {
            kata: kata.into(),
            ..Verdict::default()
        }
    }

    pub fn context(&mut self, line: impl Into<String>) {
        self.context.push(line.into());
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Every check ran and passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.status == Status::Pass)
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The first check with this step name.
    pub fn check(&self, step: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.step == step)
    }

    /// The checklist on one line: `✓ reads both files · ✗ clean: 12 duplicate orders kept`.
    pub fn summary_line(&self) -> String {
        self.checks
            .iter()
            .map(Check::line)
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Grading the {} program", self.kata)?;
        for line in &self.context {
            writeln!(f, "  {line}")?;
        }
        writeln!(f)?;
        for check in &self.checks {
            writeln!(f, "  {}", check.line())?;
        }
        for check in self.checks.iter().filter(|c| c.status == Status::Fail) {
            if let Some(detail) = &check.detail {
                writeln!(f, "\n── {} ──", check.step)?;
                writeln!(f, "{}", detail.trim_end())?;
            }
        }
        writeln!(f)?;
        let total = self.checks.len();
        let skipped = match self.count(Status::Skip) {
            0 => String::new(),
            n => format!(" ({n} not run)"),
        };
        if self.passed() {
            write!(f, "PASS: all {total} checks")
        } else {
            let failed = self.count(Status::Fail);
            write!(f, "FAIL: {failed} of {total} checks failed{skipped}")
        }
    }
}

/// Rows of text as a table, drawn by Arrow's pretty printer like the tables of the
/// step tests (a missing cell is empty).
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns: Vec<ArrayRef> = (0..header.len())
        .map(|c| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.get(c).cloned().unwrap_or_default()),
            )) as ArrayRef
        })
        .collect();
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .map(|h| Field::new(*h, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns)
        .ok()
        .and_then(|b| pretty_format_batches(&[b]).ok())
        .map_or_else(|| header.join(" | "), |t| t.to_string())
}

/// Two pretty-printed tables side by side under `expected` and `actual`, so that a row
/// that differs reads across one line.
pub fn side_by_side(expected: &str, actual: &str) -> String {
    let left: Vec<&str> = expected.lines().collect();
    let right: Vec<&str> = actual.lines().collect();
    let width = left
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max("expected".len());
    let mut out = format!("{:<width$} | actual\n", "expected");
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).copied().unwrap_or("");
        let r = right.get(i).copied().unwrap_or("");
        out.push_str(&format!("{l:<width$} | {r}\n"));
    }
    out
}

/// `n` with thousands separators: `1,203`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
