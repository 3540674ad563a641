//! The learner's level per kata, from the seed's success metrics:
//!
//! | level | criteria (passed attempts) |
//! |---|---|
//! | Beginner | completes, hints allowed (30+ min) |
//! | Intermediate | completes without hints in 20 min or less |
//! | Advanced | without hints in 15 min or less |
//! | Expert | without hints in under 10 min |
//! | Interview Ready | the last three interview-mode attempts all passed in 12 min or less |
//!
//! Interview Ready asks for consistency under interview conditions, so it ranks above
//! a single Expert time.

use crate::state::{AttemptResult, Entry, Mode, clock};

pub const INTERMEDIATE_S: f64 = 20.0 * 60.0;
pub const ADVANCED_S: f64 = 15.0 * 60.0;
pub const EXPERT_S: f64 = 10.0 * 60.0;
pub const READY_S: f64 = 12.0 * 60.0;
pub const READY_STREAK: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NotYet,
    Beginner,
    Intermediate,
    Advanced,
    Expert,
    InterviewReady,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::NotYet => "—",
            Level::Beginner => "Beginner",
            Level::Intermediate => "Intermediate",
            Level::Advanced => "Advanced",
            Level::Expert => "Expert",
            Level::InterviewReady => "Interview Ready",
        }
    }
}

/// A kata's level and what the next one asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub level: Level,
    pub next: Option<String>,
}

fn passed(e: &Entry) -> bool {
    e.result == AttemptResult::Passed
}

fn clean(e: &Entry) -> bool {
    passed(e) && e.hints_used == 0
}

/// `entries` are one kata's attempts, oldest first.
pub fn standing(entries: &[&Entry]) -> Standing {
    let best_clean = entries
        .iter()
        .filter(|e| clean(e))
        .map(|e| e.duration_s)
        .fold(f64::INFINITY, f64::min);
    let interviews: Vec<&&Entry> = entries
        .iter()
        .filter(|e| e.mode == Mode::Interview)
        .collect();
    let streak = interviews
        .iter()
        .rev()
        .take_while(|e| passed(e) && e.duration_s <= READY_S)
        .count();

    let level = if streak >= READY_STREAK {
        Level::InterviewReady
    } else if best_clean < EXPERT_S {
        Level::Expert
    } else if best_clean <= ADVANCED_S {
        Level::Advanced
    } else if best_clean <= INTERMEDIATE_S {
        Level::Intermediate
    } else if entries.iter().any(|e| passed(e)) {
        Level::Beginner
    } else {
        Level::NotYet
    };
    let best = if best_clean.is_finite() {
        format!(" (best without hints: {})", clock(best_clean))
    } else {
        String::new()
    };
    let ready = format!(
        "Interview Ready: {READY_STREAK} interview attempts in a row passed in {} or less (streak now: {streak})",
        clock(READY_S)
    );
    let next = match level {
        Level::NotYet => {
            Some("Beginner: complete the kata once, hints allowed (guided mode)".to_string())
        }
        Level::Beginner => Some(format!(
            "Intermediate: pass without hints in {} or less{best}",
            clock(INTERMEDIATE_S)
        )),
        Level::Intermediate => Some(format!(
            "Advanced: pass without hints in {} or less{best}",
            clock(ADVANCED_S)
        )),
        Level::Advanced => Some(format!(
            "Expert: pass without hints in under {}{best}",
            clock(EXPERT_S)
        )),
        Level::Expert => Some(ready),
        Level::InterviewReady => None,
    };
    Standing { level, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(mode: Mode, min: f64, result: AttemptResult, hints: usize) -> Entry {
        Entry {
            kata: "batch".into(),
            mode,
            started_at: "2026-05-01T10:00:00+00:00".into(),
            ended_at: "2026-05-01T10:30:00+00:00".into(),
            duration_s: min * 60.0,
            result,
            hints_used: hints,
            hinted_steps: vec![],
            splits: vec![],
            resumed: 0,
            gradings: 0,
            archive: None,
        }
    }

    fn level(v: &[Entry]) -> Level {
        standing(&v.iter().collect::<Vec<_>>()).level
    }

    use AttemptResult::*;
    use Mode::*;

    #[test]
    fn each_level_by_its_criteria() {
        assert_eq!(level(&[]), Level::NotYet);
        assert_eq!(level(&[e(Guided, 10.0, Abandoned, 0)]), Level::NotYet);
        assert_eq!(level(&[e(Guided, 35.0, Passed, 4)]), Level::Beginner);
        // Hints keep a fast pass at Beginner.
        assert_eq!(level(&[e(Guided, 8.0, Passed, 1)]), Level::Beginner);
        assert_eq!(level(&[e(Timed, 25.0, Passed, 0)]), Level::Beginner);
        assert_eq!(level(&[e(Timed, 20.0, Passed, 0)]), Level::Intermediate);
        assert_eq!(level(&[e(Timed, 15.0, Passed, 0)]), Level::Advanced);
        assert_eq!(level(&[e(Timed, 10.0, Passed, 0)]), Level::Advanced);
        assert_eq!(level(&[e(Timed, 9.9, Passed, 0)]), Level::Expert);
    }

    #[test]
    fn interview_ready_needs_three_interview_passes_in_a_row() {
        let ok = || e(Interview, 11.5, Passed, 0);
        assert_eq!(level(&[ok(), ok()]), Level::Advanced);
        assert_eq!(level(&[ok(), ok(), ok()]), Level::InterviewReady);
        // A timed attempt between interviews does not break the streak; a slow interview does.
        assert_eq!(
            level(&[ok(), e(Timed, 30.0, Abandoned, 0), ok(), ok()]),
            Level::InterviewReady
        );
        assert_eq!(
            level(&[ok(), ok(), ok(), e(Interview, 12.5, Passed, 0)]),
            Level::Advanced
        );
        assert_eq!(
            level(&[ok(), ok(), ok(), e(Interview, 20.0, Failed, 0)]),
            Level::Advanced
        );
        let s = standing(&[ok(), ok()].iter().collect::<Vec<_>>());
        assert_eq!(
            s.next.as_deref(),
            Some("Expert: pass without hints in under 10:00 (best without hints: 11:30)")
        );
        let s = standing(
            &[e(Timed, 9.0, Passed, 0), ok(), ok()]
                .iter()
                .collect::<Vec<_>>(),
        );
        assert_eq!(s.level, Level::Expert);
        assert!(s.next.unwrap().contains("(streak now: 2)"));
    }
}
