//! The katas, read from each `katas/*/kata.toml` when the launcher starts, so a new
//! kata appears in the menu as soon as its folder lands. Format: CONTRIBUTING.md.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Names the launcher keeps for its own commands: a kata cannot take them.
pub const RESERVED: &[&str] = &[
    "status", "history", "hint", "drill", "reset", "solution", "grade", "check", "resume", "guide",
    "help",
];

const DEFAULT_STEP_TIMEOUT_S: u64 = 60;
const DEFAULT_BUILD_TIMEOUT_S: u64 = 900;
const DEFAULT_COMMAND_TIMEOUT_S: u64 = 900;

/// One `kata.toml`, as written by the kata's author.
#[derive(Debug, Clone, Deserialize)]
pub struct Kata {
    /// The launcher's name for it: `cargo practice <name>`.
    pub name: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub title: String,
    /// How hard the kata is (`Beginner`, `Intermediate`, `Advanced`): the kata's, not the
    /// learner's level (that is `levels::Level`). Older files call it `level`.
    #[serde(default, alias = "level")]
    pub difficulty: Option<String>,
    #[serde(default)]
    pub needs_kafka: bool,
    pub timed_target_min: f64,
    pub expert_min: f64,
    pub interview_limit_min: f64,
    /// Position in the menu and the learning path (smaller first).
    #[serde(default)]
    pub order: Option<i64>,
    /// One line for the menu.
    #[serde(default)]
    pub summary: Option<String>,
    /// Bound on one run of the step tests, compiling excluded.
    #[serde(default = "default_step_timeout")]
    pub step_timeout_s: u64,
    /// Bound on compiling the kata and its tests.
    #[serde(default = "default_build_timeout")]
    pub build_timeout_s: u64,
    /// Reference source file(s), relative to the repository root, shown by `solution`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub solution: Vec<String>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub reference: Reference,
    /// Solution files by level (`beginner`, `intermediate`, `expert`), shown by
    /// `cargo practice solution <kata> --level L`.
    #[serde(default, deserialize_with = "levels")]
    pub levels: std::collections::BTreeMap<String, Vec<String>>,
    /// The whole program of timed and interview mode, and how it is graded.
    #[serde(default)]
    pub program: Option<ProgramCheck>,

    /// `katas/<crate>`, set after loading.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub test: String,
    #[serde(default)]
    pub function: Option<String>,
    pub title: String,
    #[serde(default)]
    pub hint: Option<String>,
}

/// Reference mode: commands run one after the other from the repository root.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reference {
    #[serde(default)]
    pub run: Vec<RefCommand>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefCommand {
    pub title: String,
    pub cmd: Vec<String>,
    /// `always` (default), `broker` (only when KAFKA_BOOTSTRAP_SERVERS is set) or `mock`
    /// (only when it is not).
    #[serde(default)]
    pub when: When,
    #[serde(default = "default_command_timeout")]
    pub timeout_s: u64,
    /// Show only the first N lines of the command's standard output (a preview).
    #[serde(default)]
    pub preview_rows: Option<usize>,
    /// `text` (default) or `csv`: standard output is CSV, shown as an aligned table.
    #[serde(default)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Text,
    Csv,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    #[default]
    Always,
    Broker,
    Mock,
}

/// The whole program: a blank file holding only the problem statement, written from
/// memory in timed and interview mode, and graded end to end.
#[derive(Debug, Clone, Deserialize)]
pub struct ProgramCheck {
    /// The blank program, relative to the kata's folder (so a reset restores it).
    pub file: String,
    /// The command that grades a program file; `{file}` is its absolute path. It exits
    /// 0 on a pass and 1 on a fail (anything else: it could not grade), and prints the
    /// verdict on stdout.
    pub grade: Vec<String>,
    /// Bound on one grading, the build of the program included.
    #[serde(default = "default_grade_timeout")]
    pub timeout_s: u64,
    /// Run (output shown, no time limit) before a whole-program attempt's clock starts:
    /// builds what grading needs, so the first `g` does not spend the attempt's time
    /// compiling dependencies.
    #[serde(default)]
    pub prepare: Vec<String>,
}

fn default_step_timeout() -> u64 {
    DEFAULT_STEP_TIMEOUT_S
}
fn default_build_timeout() -> u64 {
    DEFAULT_BUILD_TIMEOUT_S
}
fn default_command_timeout() -> u64 {
    DEFAULT_COMMAND_TIMEOUT_S
}
fn default_grade_timeout() -> u64 {
    DEFAULT_BUILD_TIMEOUT_S
}

/// A file, or a list of files.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn files(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(OneOrMany::deserialize(d)?.files())
}

fn levels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, D::Error> {
    let map = std::collections::BTreeMap::<String, OneOrMany>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.files())).collect())
}

impl Kata {
    /// `katas/<crate>` relative to the repository root, with forward slashes (for git).
    pub fn rel_dir(&self) -> String {
        format!("katas/{}", self.crate_name)
    }

    /// The whole program's path, when the kata has one.
    pub fn program_path(&self) -> Option<PathBuf> {
        self.program.as_ref().map(|p| self.dir.join(&p.file))
    }

    /// The whole program relative to the repository root.
    pub fn program_rel(&self) -> Option<String> {
        self.program
            .as_ref()
            .map(|p| format!("{}/{}", self.rel_dir(), p.file))
    }

    pub fn target_s(&self) -> f64 {
        self.timed_target_min * 60.0
    }
    pub fn expert_s(&self) -> f64 {
        self.expert_min * 60.0
    }
    pub fn limit_s(&self) -> f64 {
        self.interview_limit_min * 60.0
    }

    /// The kata crate's direct dependencies, as its Cargo.toml names them (what a first
    /// build compiles), without the workspace-hack and optional ones.
    pub fn dependencies(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("Cargo.toml")) else {
            return Vec::new();
        };
        let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
            return Vec::new();
        };
        let Some(deps) = manifest.get("dependencies").and_then(|d| d.as_table()) else {
            return Vec::new();
        };
        deps.iter()
            .filter(|(name, spec)| {
                name.as_str() != "workspace-hack"
                    && !spec
                        .get("optional")
                        .and_then(|o| o.as_bool())
                        .unwrap_or(false)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Finds a step by number (1-based), test name or function name.
    pub fn find_step(&self, key: &str) -> Result<usize> {
        let key = key.trim();
        if let Ok(n) = key.parse::<usize>() {
            if n >= 1 && n <= self.steps.len() {
                return Ok(n - 1);
            }
            bail!(
                "kata `{}` has steps 1 to {}, not {n}",
                self.name,
                self.steps.len()
            );
        }
        self.steps
            .iter()
            .position(|s| s.test == key || s.function.as_deref() == Some(key))
            .with_context(|| {
                format!(
                    "kata `{}` has no step `{key}` (give a number from 1 to {}, a test name like `{}` or a function name)",
                    self.name,
                    self.steps.len(),
                    self.steps[0].test
                )
            })
    }

    fn validate(&self, file: &Path, dir_name: &str) -> Result<()> {
        let ok_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok_name {
            bail!(
                "{}: `name = {:?}` must be lowercase letters, digits, `-` or `_`",
                file.display(),
                self.name
            );
        }
        if RESERVED.contains(&self.name.as_str()) {
            bail!(
                "{}: `name = {:?}` is a launcher command; choose another name",
                file.display(),
                self.name
            );
        }
        if self.crate_name != dir_name {
            bail!(
                "{}: `crate = {:?}` must be the kata's folder name `{dir_name}`",
                file.display(),
                self.crate_name
            );
        }
        if self.steps.is_empty() {
            bail!("{}: no `[[steps]]`", file.display());
        }
        let mut seen = HashSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !seen.insert(s.test.as_str()) {
                bail!(
                    "{}: step {} repeats the test name `{}`",
                    file.display(),
                    i + 1,
                    s.test
                );
            }
        }
        for (what, v) in [
            ("timed_target_min", self.timed_target_min),
            ("expert_min", self.expert_min),
            ("interview_limit_min", self.interview_limit_min),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!(
                    "{}: `{what} = {v}` must be a positive number of minutes",
                    file.display()
                );
            }
        }
        if self.expert_min > self.timed_target_min {
            bail!(
                "{}: `expert_min = {}` is above `timed_target_min = {}`",
                file.display(),
                self.expert_min,
                self.timed_target_min
            );
        }
        for r in &self.reference.run {
            if r.cmd.is_empty() {
                bail!(
                    "{}: reference command `{}` has an empty `cmd`",
                    file.display(),
                    r.title
                );
            }
        }
        if let Some(p) = &self.program {
            if p.grade.is_empty() {
                bail!(
                    "{}: `[program]` has an empty `grade` command",
                    file.display()
                );
            }
            let kata_dir = file.parent().unwrap_or(Path::new("."));
            if !kata_dir.join(&p.file).is_file() {
                bail!(
                    "{}: `[program] file = {:?}` is not a file in {}",
                    file.display(),
                    p.file,
                    self.rel_dir()
                );
            }
        }
        Ok(())
    }
}

/// Every kata found, and the `kata.toml` files that could not be read.
#[derive(Debug, Default)]
pub struct Catalog {
    pub katas: Vec<Kata>,
    pub problems: Vec<String>,
}

impl Catalog {
    pub fn discover(repo: &Path) -> Result<Catalog> {
        let dir = repo.join("katas");
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list the katas in {}", dir.display()))?;
        let mut cat = Catalog::default();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let file = entry.path().join("kata.toml");
            if !file.is_file() {
                continue;
            }
            let dir_name = entry.file_name().to_string_lossy().into_owned();
            match load(&file, &dir_name) {
                Ok(mut k) => {
                    k.dir = entry.path();
                    cat.katas.push(k);
                }
                Err(e) => cat.problems.push(format!("{e:#}")),
            }
        }
        cat.katas.sort_by(|a, b| {
            (a.order.unwrap_or(i64::MAX), &a.name).cmp(&(b.order.unwrap_or(i64::MAX), &b.name))
        });
        let mut names = HashSet::new();
        let mut dupes = Vec::new();
        for k in &cat.katas {
            if !names.insert(k.name.clone()) {
                dupes.push(format!(
                    "two katas are named `{}` (one in {}): rename one in its kata.toml",
                    k.name,
                    k.dir.display()
                ));
            }
        }
        cat.problems.extend(dupes);
        Ok(cat)
    }

    pub fn get(&self, name: &str) -> Result<&Kata> {
        self.katas
            .iter()
            .find(|k| k.name == name || k.crate_name == name)
            .with_context(|| {
                let known: Vec<&str> = self.katas.iter().map(|k| k.name.as_str()).collect();
                let mut msg = if known.is_empty() && self.problems.is_empty() {
                    format!("no kata `{name}`: no katas/*/kata.toml was found")
                } else if known.is_empty() {
                    format!("no kata `{name}`: no kata.toml could be read")
                } else {
                    format!("no kata `{name}`; the katas are: {}", known.join(", "))
                };
                for p in &self.problems {
                    msg.push_str(&format!("\n  ! {p}"));
                }
                msg
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.katas.iter().map(|k| k.name.clone()).collect()
    }
}

fn load(file: &Path, dir_name: &str) -> Result<Kata> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let kata: Kata = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid kata.toml", file.display()))?;
    kata.validate(file, dir_name)?;
    Ok(kata)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "batch"
crate = "batch_kata"
title = "Batch ETL: CSV -> Parquet"
difficulty = "Beginner"
needs_kafka = false
timed_target_min = 15
expert_min = 10
interview_limit_min = 20

[[steps]]
test = "step_01_create_session"
function = "create_session"
title = "Create the session"
hint = "..."
"#;

    #[test]
    fn the_documented_format_loads_with_defaults() {
        let k: Kata = toml::from_str(MINIMAL).unwrap();
        k.validate(Path::new("kata.toml"), "batch_kata").unwrap();
        assert_eq!(k.target_s(), 900.0);
        assert_eq!(k.step_timeout_s, DEFAULT_STEP_TIMEOUT_S);
        assert!(k.reference.run.is_empty() && k.program.is_none() && k.solution.is_empty());
        assert_eq!(k.difficulty.as_deref(), Some("Beginner"));
        assert_eq!(k.find_step("1").unwrap(), 0);
        assert_eq!(k.find_step("create_session").unwrap(), 0);
        assert_eq!(k.find_step("step_01_create_session").unwrap(), 0);
        assert!(
            k.find_step("2")
                .unwrap_err()
                .to_string()
                .contains("steps 1 to 1")
        );
    }

    #[test]
    fn the_older_name_of_the_difficulty_still_loads() {
        let k: Kata = toml::from_str(&MINIMAL.replace("difficulty =", "level =")).unwrap();
        assert_eq!(k.difficulty.as_deref(), Some("Beginner"));
    }

    #[test]
    fn a_crate_that_is_not_the_folder_is_refused() {
        let k: Kata = toml::from_str(MINIMAL).unwrap();
        let err = k.validate(Path::new("katas/x/kata.toml"), "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("must be the kata's folder name `x`"),
            "{err}"
        );
    }
}
