//! Questions to the learner: arrow-key menus on a terminal (dialoguer), numbered
//! lists answered by typing when stdin is not a terminal (a pipe, a test, a script).

use std::io::{BufRead, Write};

use anyhow::{Context, Result};

pub trait Prompt {
    /// The chosen item's index; `None` when the learner backs out or input ends.
    fn select(&mut self, title: &str, items: &[Item]) -> Result<Option<usize>>;
    fn confirm(&mut self, question: &str, default: bool) -> Result<Option<bool>>;
}

/// A menu entry: a short key that can be typed, and the label shown.
#[derive(Clone)]
pub struct Item {
    pub key: String,
    pub label: String,
}

impl Item {
    pub fn new(key: impl Into<String>, label: impl Into<String>) -> Item {
        Item {
            key: key.into(),
            label: label.into(),
        }
    }
}

pub fn for_terminal(interactive: bool) -> Box<dyn Prompt> {
    if interactive {
        Box::new(Arrows)
    } else {
        Box::new(Typed)
    }
}

struct Arrows;

impl Prompt for Arrows {
    fn select(&mut self, title: &str, items: &[Item]) -> Result<Option<usize>> {
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        dialoguer::Select::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(format!("{title}  (↑/↓, Enter; Esc or q to go back)"))
            .items(&labels)
            .default(0)
            .interact_opt()
            .context("cannot read the menu choice")
    }

    fn confirm(&mut self, question: &str, default: bool) -> Result<Option<bool>> {
        dialoguer::Confirm::with_theme(&dialoguer::theme::ColorfulTheme::default())
            .with_prompt(question)
            .default(default)
            .interact_opt()
            .context("cannot read the answer")
    }
}

struct Typed;

fn read_line() -> Result<Option<String>> {
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    Ok(if n == 0 {
        None
    } else {
        Some(line.trim().to_string())
    })
}

impl Prompt for Typed {
    fn select(&mut self, title: &str, items: &[Item]) -> Result<Option<usize>> {
        loop {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{title}")?;
            for (i, it) in items.iter().enumerate() {
                writeln!(out, "  {:>2}) {}", i + 1, it.label)?;
            }
            write!(out, "Type a number or a name: ")?;
            out.flush()?;
            drop(out);
            let Some(answer) = read_line()? else {
                println!();
                return Ok(None);
            };
            println!();
            if let Ok(n) = answer.parse::<usize>()
                && n >= 1
                && n <= items.len()
            {
                return Ok(Some(n - 1));
            }
            if let Some(i) = items
                .iter()
                .position(|it| it.key.eq_ignore_ascii_case(&answer))
            {
                return Ok(Some(i));
            }
            println!(
                "No choice `{answer}`: type a number from 1 to {}, or a name such as `{}`.",
                items.len(),
                items[0].key
            );
        }
    }

    fn confirm(&mut self, question: &str, default: bool) -> Result<Option<bool>> {
        loop {
            print!("{question} [{}] ", if default { "Y/n" } else { "y/N" });
            std::io::stdout().flush()?;
            let Some(answer) = read_line()? else {
                println!();
                return Ok(None);
            };
            match answer.to_ascii_lowercase().as_str() {
                "" => return Ok(Some(default)),
                "y" | "yes" => return Ok(Some(true)),
                "n" | "no" => return Ok(Some(false)),
                other => println!("Answer y or n, not `{other}`."),
            }
        }
    }
}
