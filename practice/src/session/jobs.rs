//! The session's background work: one test run or grading at a time, on a thread,
//! reporting its progress and its result as events.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::thread;

use super::Event;
use crate::grade::{self, Graded, Verdict};
use crate::kata::Kata;
use crate::process::{Cancel, Output};
use crate::runner::{Progress, StepRunner, Times};

/// The run or grading in progress.
pub struct Running {
    pub id: u64,
    cancel: Cancel,
    /// Attempt time when it started: the time of the code it tests.
    pub at_s: f64,
    pub grading: bool,
    /// Started by the interview limit, or still running when the limit passed: its
    /// verdict ends the attempt.
    pub at_limit: bool,
    /// What it is doing now (compiling, testing).
    pub progress: Option<Progress>,
}

/// What to run.
pub struct Job {
    pub repo: PathBuf,
    pub kata: Kata,
    pub log: PathBuf,
    pub times: Times,
    /// Grade the whole program at this path; `None` with `grading`: the step tests decide.
    pub program: Option<PathBuf>,
    pub grading: bool,
    pub at_s: f64,
    pub at_limit: bool,
}

pub struct Jobs {
    tx: Sender<Event>,
    seq: u64,
    running: Option<Running>,
    /// Runs are registered but never started: tests hand the session their results.
    #[cfg(test)]
    pub dry: bool,
}

impl Jobs {
    pub fn new(tx: Sender<Event>) -> Jobs {
        Jobs {
            tx,
            seq: 0,
            running: None,
            #[cfg(test)]
            dry: false,
        }
    }

    pub fn running(&self) -> Option<&Running> {
        self.running.as_ref()
    }

    pub fn running_mut(&mut self) -> Option<&mut Running> {
        self.running.as_mut()
    }

    /// Stops the run in progress, if any.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.cancel.cancel();
        }
    }

    /// The run `id`, if it is the one in progress: it has finished.
    pub fn finished(&mut self, id: u64) -> Option<Running> {
        if self.running.as_ref().is_some_and(|r| r.id == id) {
            self.running.take()
        } else {
            None
        }
    }

    /// Starts `job`, stopping the run in progress.
    pub fn start(&mut self, job: Job) {
        self.stop();
        self.seq += 1;
        let (id, cancel) = (self.seq, Cancel::default());
        self.running = Some(Running {
            id,
            cancel: cancel.clone(),
            at_s: job.at_s,
            grading: job.grading,
            at_limit: job.at_limit,
            progress: None,
        });
        #[cfg(test)]
        if self.dry {
            return;
        }
        let tx = self.tx.clone();
        thread::spawn(move || {
            let progress_tx = tx.clone();
            let progress = move |p: Progress| {
                let _ = progress_tx.send(Event::Progress(id, p));
            };
            let runner = StepRunner {
                repo: &job.repo,
                kata: &job.kata,
                log: job.log.clone(),
                times: &job.times,
                progress: &progress,
            };
            let ev = match (job.grading, &job.program) {
                (true, Some(file)) => Event::Graded(
                    id,
                    grade::grade(
                        &job.repo,
                        &job.kata,
                        file,
                        &cancel,
                        Output::Capture,
                        &progress,
                    ),
                ),
                // A kata without a whole program is graded by its step tests.
                (true, None) => Event::Graded(
                    id,
                    runner.run(&cancel).map(|report| Graded {
                        verdict: if report.all_passed() {
                            Verdict::Passed
                        } else {
                            Verdict::Failed
                        },
                        report: super::view::checklist(&job.kata, &report, &[], None),
                        took: report.took,
                    }),
                ),
                (false, _) => Event::Ran(id, runner.run(&cancel)),
            };
            let _ = tx.send(ev);
        });
    }
}
