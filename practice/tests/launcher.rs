//! Every command of the launcher, driven as a learner would, on a temporary toy
//! repository (see `support`): sessions through stdin, reset on a real git checkout,
//! history and levels from a prepared file, broken learner code.

mod support;

use std::time::Duration;

use support::{
    BLANK_PROGRAM, KATA_RS, KATA_TOML, PRISTINE, PROGRAM_RS, Repo, SOLVED, SOLVED_PROGRAM,
    program_toml, step_one_solved,
};

/// Paths and clock readings change run to run.
fn settings(repo: &Repo) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let path = repo.path().canonicalize().unwrap();
    s.add_filter(&regex_escape(&path.display().to_string()), "[REPO]");
    s.add_filter(&regex_escape(&repo.path().display().to_string()), "[REPO]");
    s.add_filter(r"process \d+", "process [PID]");
    s.add_filter(r"\d{8}-\d{6}", "[STAMP]");
    s.add_filter(r"\d+\.\d s", "[SECS] s");
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------- help

#[test]
fn help_lists_every_command_and_the_katas_found_with_examples() {
    let r = Repo::new();
    let out = r.run(&["--help"], "");
    out.ok();
    insta::assert_snapshot!("help", out.stdout);
    for cmd in [
        "status", "history", "hint", "reset", "solution", "grade", "check", "resume", "guide",
        "toy",
    ] {
        let out = r.run(&[cmd, "--help"], "");
        out.ok().has("Examples:\n  cargo practice");
    }
    r.run(&["toy", "--help"], "")
        .has("cargo practice toy --mode timed")
        .has("Difficulty: Beginner.")
        .has("Timed: target 15:00, expert 10:00. Interview: 20:00 limit.");
    // Help stays short: the learning path and the tips are in `cargo practice guide`.
    let long = r.run(&["help"], "");
    long.ok().has("cargo practice guide");
    assert!(!long.stdout.contains("Learning path"), "{}", long.stdout);
    assert!(long.stdout.lines().count() < 50, "{}", long.stdout);
}

#[test]
fn guide_prints_the_learning_path_levels_and_tips() {
    let r = Repo::new();
    // The learning path comes from the kata list: here one kata, week 1.
    let out = r.run(&["guide"], "");
    out.ok()
        .has("  Week 1  toy      Toy kata: three small steps\n")
        .has("the whole program from a blank file in 15:00 (expert 10:00)")
        .has("Result: interview-ready on the kata (2-3 weeks")
        .has("Interview Ready  three interview-mode attempts in a row")
        .has("10. Practise explaining");
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("  Week 2")),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------- check and broken katas

#[test]
fn check_reports_every_pristine_step_as_todo() {
    let r = Repo::new();
    let out = r.run(&["check", "toy"], "");
    out.failed();
    settings(&r).bind(|| insta::assert_snapshot!("check_pristine", out.stdout));
    let text = out.stdout.clone();
    assert!(text.contains("○  1 Double a number  todo"), "{text}");
    assert!(text.contains("○  3 Sum the list     todo"), "{text}");
    assert!(text.contains("0/3 steps green"), "{text}");
    assert!(
        text.contains("Next: step 1 — Double a number (hint: `cargo practice hint toy <step>`)"),
        "{text}"
    );
}

#[test]
fn a_compile_error_is_shown_with_the_compiler_message() {
    let r = Repo::new();
    r.write(
        KATA_RS,
        &PRISTINE.replace("todo!(\"step 1: double {x}\")", "x *"),
    );
    let out = r.run(&["check", "toy"], "");
    out.failed()
        .has("✗ does not compile")
        .has("error: expected expression")
        .has("katas/toy_kata/src/lib.rs:");
}

#[test]
fn a_panic_a_stack_overflow_and_an_endless_loop_are_each_pinned_on_their_step() {
    let r = Repo::new();
    r.write(
        KATA_RS,
        r#"pub fn double(_x: i64) -> i64 {
    panic!("my own panic message")
}
#[allow(unconditional_recursion)]
pub fn greet(name: &str) -> String {
    greet(name)
}
pub fn total(xs: &[i64]) -> i64 {
    loop {
        std::hint::black_box(xs);
    }
}
"#,
    );
    let out = r.run(&["check", "toy"], "");
    out.failed()
        .has("✗  1 Double a number  failed")
        .has("!  2 Greet someone    crashed")
        .has("!  3 Sum the list     stuck")
        .has("First failure — step 1 (step_01_double):\n    my own panic message");
    // The full log has the crash and the stop.
    let log = r.read(".practice/last-run.log");
    assert!(log.contains("has overflowed its stack"), "{log}");
    assert!(log.contains("stopped: deadline passed"), "{log}");
}

#[test]
fn a_stuck_run_keeps_todo_steps_as_todo_and_says_it_was_cut_short() {
    let r = Repo::new();
    r.write(
        KATA_RS,
        &PRISTINE.replace(
            "todo!(\"step 3: total of {xs:?}\")",
            "loop {\n        std::hint::black_box(xs);\n    }",
        ),
    );
    let out = r.run(&["check", "toy"], "");
    out.failed()
        .has("○  1 Double a number  todo")
        .has("○  2 Greet someone    todo")
        .has("!  3 Sum the list     stuck")
        .has("The run was cut short after")
        .has("First failure — step 3 (step_03_total):\n    no result after");
    assert!(!out.stdout.contains("failed"), "{}", out.stdout);
}

#[test]
fn a_step_that_passed_before_is_stopped_after_ten_times_its_time_not_the_kata_limit() {
    // A minute for a step that never passed; a step that passed in well under a second
    // gets 10× that, at least 15 s.
    let r = Repo::with_kata_toml(&KATA_TOML.replace("step_timeout_s = 3", "step_timeout_s = 60"));
    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    r.write(KATA_RS, &step_one_solved());
    s.expect("1/3 steps green");
    let saved = std::time::Instant::now();
    r.write(
        KATA_RS,
        &PRISTINE.replace(
            "todo!(\"step 1: double {x}\")",
            "loop {\n        std::hint::black_box(x);\n    }",
        ),
    );
    let out = s.expect_within("The run was cut short", Duration::from_secs(55));
    let took = saved.elapsed();
    assert!(
        took < Duration::from_secs(40),
        "stopped after {took:?}, not within its 15 s bound:\n{out}"
    );
    assert!(out.contains("!  1 Double a number  stuck"), "{out}");
    assert!(out.contains("○  2 Greet someone    todo"), "{out}");
    let first = s.expect("no result after");
    assert!(first.contains("(it passed in "), "{first}");
    s.send("p");
    s.finish();
}

#[test]
fn the_pristine_check_passes_on_the_pristine_kata_and_fails_on_a_solved_step() {
    let r = Repo::new();
    r.run(&["check", "--all", "--pristine"], "")
        .ok()
        .has("-- toy: katas/toy_kata as committed must fail step by step")
        .has("ok: 3 step tests, each failing on its own todo!(); not passing either: end_to_end")
        .has("Pristine: every step test of 1 kata(s) fails on its own todo!().");

    r.write(KATA_RS, &step_one_solved());
    r.run(&["check", "--all", "--pristine"], "")
        .failed()
        .has("note: katas/toy_kata has uncommitted changes (1 file(s))")
        .has("FAIL: step 1 (step_01_double) passes on the pristine kata (is `double` solved?)")
        .has("Not pristine-failing step by step: toy (1 of 1 katas)");

    // A step test that fails on another step's todo!() does not prove its own step unsolved.
    r.write(KATA_RS, PRISTINE);
    r.write(
        "katas/toy_kata/tests/steps.rs",
        &r.read("katas/toy_kata/tests/steps.rs").replace(
            "assert_eq!(crate::greet(\"Ada\"), \"Hello, Ada!\");",
            "assert_eq!(crate::double(1), 2);",
        ),
    );
    r.run(&["check", "toy", "--pristine"], "")
        .failed()
        .has("FAIL: step 2 (step_02_greet) fails on a todo!() that is not its own `todo!(\"step 2: …\")`: not yet implemented: step 1: double 1");
}

/// Asserts that the last run's first command (its log's first line) was cargo's build
/// (`by_cargo`) or the kept rustc command.
fn assert_built_by(r: &Repo, by_cargo: bool) {
    let log = r.read(".practice/last-run.log");
    let first = log.lines().next().unwrap_or_default();
    let (wanted, what) = if by_cargo {
        (" test -p toy_kata ", "cargo")
    } else {
        ("--crate-name toy_kata", "rustc directly")
    };
    assert!(first.contains(wanted), "built by {what}? {first}");
}

#[test]
fn a_save_that_changed_only_the_kata_is_built_without_cargo() {
    let r = Repo::new();
    r.run(&["check", "toy"], "").failed().has("0/3 steps green");
    assert_built_by(&r, true);
    // That build wrote Cargo.lock as it ran, so nothing was kept from it; this one is kept.
    r.write(KATA_RS, &step_one_solved());
    r.run(&["check", "toy"], "").failed().has("1/3 steps green");

    r.write(KATA_RS, SOLVED);
    r.run(&["check", "toy"], "").ok().has("3/3 steps green");
    assert_built_by(&r, false);
    // rustc's errors, as cargo would show them.
    r.write(KATA_RS, &SOLVED.replace("x * 2", "x *"));
    r.run(&["check", "toy"], "")
        .failed()
        .has("✗ does not compile")
        .has("error: expected expression")
        .has("katas/toy_kata/src/lib.rs:");
    assert_built_by(&r, false);

    // Anything else changed: cargo builds again.
    let manifest = "katas/toy_kata/Cargo.toml";
    r.write(manifest, &format!("{}# changed\n", r.read(manifest)));
    r.write(KATA_RS, PRISTINE);
    r.run(&["check", "toy"], "").failed().has("0/3 steps green");
    assert_built_by(&r, true);

    // A file that was not there when the command was kept (a build script, here) is
    // seen too: its folder changed. Built by cargo, the build script's variable is set.
    r.write(KATA_RS, &step_one_solved());
    r.run(&["check", "toy"], "").failed().has("1/3 steps green");
    assert_built_by(&r, false);
    r.write(
        "katas/toy_kata/build.rs",
        "fn main() { println!(\"cargo::rustc-env=TOY_NOTE=built\"); }\n",
    );
    r.write(
        KATA_RS,
        &format!(
            "{}\npub const NOTE: &str = env!(\"TOY_NOTE\");\n",
            step_one_solved()
        ),
    );
    r.run(&["check", "toy"], "").failed().has("1/3 steps green");
    assert_built_by(&r, true);
}

#[test]
fn a_kata_toml_naming_a_missing_test_says_so() {
    let r = Repo::with_kata_toml(&KATA_TOML.replace("step_03_total", "step_03_sum"));
    r.write(KATA_RS, SOLVED);
    r.run(&["check", "toy"], "")
        .failed()
        .has("?  3 Sum the list     no such test")
        .has("tests/steps.rs has no test named `step_03_sum`");
}

#[test]
fn a_broken_kata_toml_is_named_with_its_line() {
    let r = Repo::new();
    r.write(
        "katas/toy_kata/kata.toml",
        "name = \"toy\"\ncrate = \"toy_kata\"\ntitle = 3\n",
    );
    let out = r.run(&["status"], "");
    out.ok()
        .has("katas/toy_kata/kata.toml is not a valid kata.toml")
        .has("line 3");
    r.run(&["toy"], "").failed();
}

// ---------------------------------------------------------------- guided

#[test]
fn guided_session_through_stdin_counts_hints_reruns_on_save_and_ends_restored() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy", "--mode", "guided"]);
    s.expect("0/3 steps green");
    s.send("h");
    let hint = s.expect("hints used this attempt: 1");
    assert!(
        hint.contains("Hint — step 1 Double a number (`double`):\n  Multiply by two."),
        "{hint}"
    );
    s.send("h 1");
    s.expect("hints used this attempt: 1");
    s.send("h 3");
    s.expect("hints used this attempt: 2");
    r.write(KATA_RS, &step_one_solved());
    s.expect("1/3 steps green");
    r.write(KATA_RS, SOLVED);
    let end = s.expect("is pristine again");
    assert!(end.contains("✓ Passed in"), "{end}");
    assert!(end.contains("toy guided mode, 2 hint(s)"), "{end}");
    let (status, _) = s.finish();
    assert!(status.success());

    assert_eq!(r.read(KATA_RS), PRISTINE, "the kata is restored");
    let h = r.history();
    let e = &h["attempts"][0];
    assert_eq!(e["result"], "passed");
    assert_eq!(e["mode"], "guided");
    assert_eq!(e["hints_used"], 2);
    assert_eq!(e["hinted_steps"], serde_json::json!([1, 3]));
    let archive = r.file(e["archive"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(archive.join("src/lib.rs")).unwrap(),
        SOLVED
    );
    assert!(
        std::fs::read_to_string(archive.join("changes.patch"))
            .unwrap()
            .contains("+    format!(\"Hello, {name}!\")")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(archive.join("attempt.json")).unwrap()
        )
        .unwrap()["result"],
        "passed"
    );
    assert!(r.current().is_none(), "no attempt left in progress");
}

// ---------------------------------------------------------------- timed

#[test]
fn timed_session_records_a_split_when_each_step_first_passes() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy", "--mode", "timed"]);
    s.expect("0/3 steps green");
    s.send("h");
    s.expect("No hints in timed mode");
    r.write(KATA_RS, &step_one_solved());
    let first = s.expect("1/3 steps green");
    assert!(first.contains("(target 15:00, expert 10:00)"), "{first}");
    r.write(KATA_RS, SOLVED);
    let end = s.expect("is pristine again");
    assert!(
        end.contains("target 15:00: ") && end.contains(" under · expert 10:00: "),
        "{end}"
    );
    assert!(end.contains("splits: 1 "), "{end}");
    s.finish();

    let e = &r.history()["attempts"][0];
    assert_eq!(e["mode"], "timed");
    assert_eq!(e["hints_used"], 0);
    let splits = e["splits"].as_array().unwrap();
    let at = |step: u64| {
        splits.iter().find(|s| s["step"] == step).unwrap()["at_s"]
            .as_f64()
            .unwrap()
    };
    assert!(at(1) < at(2), "step 1 turned green first: {splits:?}");
    assert_eq!(at(2), at(3), "steps 2 and 3 turned green together");
    assert!(e["duration_s"].as_f64().unwrap() >= at(3));
}

// ---------------------------------------------------------------- pause, Ctrl-C, resume, abandon

#[test]
fn pause_then_resume_then_abandon_archives_records_and_restores() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy", "--mode", "timed"]);
    s.expect("0/3 steps green");
    r.write(KATA_RS, &step_one_solved());
    s.expect("1/3 steps green");
    s.send("p");
    s.expect("Attempt saved (paused)");
    let (status, _) = s.finish();
    assert!(status.success());
    let cur = r.current().expect("the attempt is saved");
    assert_eq!(cur["mode"], "timed");
    assert!(cur["pid"].is_null());
    assert_eq!(
        r.read(KATA_RS),
        step_one_solved(),
        "the code stays while paused"
    );

    r.run(&["status"], "")
        .ok()
        .has("In progress  toy · timed · ")
        .has("paused: `cargo practice resume`");

    let mut s = r.spawn(&["resume"]);
    s.expect("Resuming at");
    s.expect("1/3 steps green");
    s.abandon();
    assert_eq!(r.read(KATA_RS), PRISTINE);
    let e = &r.history()["attempts"][0];
    assert_eq!(e["result"], "abandoned");
    assert_eq!(e["resumed"], 1);
    assert_eq!(e["splits"][0]["step"], 1, "the split survives the pause");
    assert!(r.current().is_none());
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_the_attempt_and_the_menu_offers_to_resume_it() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(s.child.id() as libc::pid_t, libc::SIGINT);
    }
    s.expect("Attempt saved (Ctrl-C)");
    let (status, _) = s.finish();
    assert_eq!(status.code(), Some(130));
    assert_eq!(r.current().unwrap()["kata"], "toy");

    let mut m = r.spawn(&[]);
    m.send("y");
    m.expect("Resuming at");
    m.send("p");
    m.expect("Attempt saved (paused)");
    m.finish();
    assert_eq!(r.current().unwrap()["resumed"], 2);
}

#[test]
fn a_second_session_is_refused_while_one_runs() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    r.run(&["toy"], "")
        .failed()
        .has("is running in another terminal (process");
    r.run(&["reset", "toy"], "")
        .failed()
        .has("reset refused: the guided attempt on `toy` is running in another terminal");
    s.send("p");
    s.finish();
}

// ---------------------------------------------------------------- interview, whole program

#[test]
fn interview_grades_the_whole_program_on_request_and_restores_the_blank_file() {
    let r = Repo::with_kata_toml(&program_toml("20", ""));
    let mut s = r.spawn(&["toy", "-m", "interview"]);
    let intro = s.expect("You have 20:00. No hints");
    assert!(intro.contains(PROGRAM_RS), "{intro}");
    s.send("h");
    s.expect("No hints in interview mode");
    s.send("g");
    let first = s.expect("Not passed yet; the clock is running");
    assert!(first.contains("✗ main: prints nothing"), "{first}");
    r.write(PROGRAM_RS, SOLVED_PROGRAM);
    s.send("g");
    let end = s.expect("is pristine again");
    assert!(end.contains("✓ main: prints the answer"), "{end}");
    assert!(end.contains("✓ Passed in"), "{end}");
    s.finish();
    let e = &r.history()["attempts"][0];
    assert_eq!(e["mode"], "interview");
    assert_eq!(e["file"], "program");
    assert_eq!(e["result"], "passed");
    assert_eq!(e["gradings"], 2);
    // The program is archived with the attempt, and the blank file is back.
    let archive = e["archive"].as_str().unwrap();
    assert_eq!(
        r.read(&format!("{archive}/program/main.rs")),
        SOLVED_PROGRAM
    );
    assert_eq!(r.read(PROGRAM_RS), BLANK_PROGRAM);
}

#[test]
fn a_grading_that_cannot_run_is_not_a_verdict_on_the_program() {
    let r = Repo::with_kata_toml(&program_toml("20", "echo no broker >&2; exit 2; "));
    let mut s = r.spawn(&["toy", "-m", "interview"]);
    s.expect("You have 20:00");
    r.write(PROGRAM_RS, SOLVED_PROGRAM);
    s.send("g");
    let out = s.expect("this is not your program's verdict");
    assert!(out.contains("no broker"), "{out}");
    s.abandon();
    assert_eq!(r.history()["attempts"][0]["result"], "abandoned");
}

#[test]
fn timed_mode_is_the_whole_program_unless_steps_is_asked_for() {
    let r = Repo::with_kata_toml(&program_toml("20", ""));
    let mut s = r.spawn(&["toy", "-m", "timed"]);
    let intro = s.expect("press g to build your program");
    assert!(intro.contains(PROGRAM_RS), "{intro}");
    r.write(PROGRAM_RS, SOLVED_PROGRAM);
    s.send("g");
    s.expect("is pristine again");
    s.finish();
    let e = &r.history()["attempts"][0];
    assert_eq!(
        (e["mode"].as_str(), e["file"].as_str()),
        (Some("timed"), Some("program"))
    );
    assert_eq!(e["result"], "passed");

    let mut s = r.spawn(&["toy", "-m", "timed", "--steps"]);
    let intro = s.expect("each step's split is taken when it first passes");
    assert!(intro.contains(KATA_RS), "{intro}");
    s.abandon();
    assert_eq!(r.history()["attempts"][1]["file"], "steps");
}

#[test]
fn the_grader_is_built_before_the_clock_starts() {
    // A 3 s "build" before the attempt: the pass right after must be timed from 0.
    let toml = format!(
        "{}prepare = [\"sh\", \"-c\", \"echo building the grader; sleep 3\"]\n",
        program_toml("20", "")
    );
    let r = Repo::with_kata_toml(&toml);
    let mut s = r.spawn(&["toy", "-m", "interview"]);
    let intro = s.expect("You have 20:00");
    assert!(intro.contains("Before the clock starts"), "{intro}");
    assert!(intro.contains("building the grader"), "{intro}");
    r.write(PROGRAM_RS, SOLVED_PROGRAM);
    s.send("g");
    s.expect("is pristine again");
    s.finish();
    let e = &r.history()["attempts"][0];
    assert_eq!(e["result"], "passed");
    assert!(
        e["duration_s"].as_f64().unwrap() < 3.0,
        "the preparation is not the learner's time: {e}"
    );
}

#[test]
fn grade_from_the_shell_exits_with_the_verdict() {
    let r = Repo::with_kata_toml(&program_toml("20", ""));
    let out = r.run(&["grade", "toy"], "");
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("✗ main: prints nothing"),
        "{}",
        out.stdout
    );
    r.write("elsewhere/answer.rs", SOLVED_PROGRAM);
    let out = r.run(&["grade", "toy", "--file", "elsewhere/answer.rs"], "");
    assert_eq!(out.status.code(), Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("✓ main: prints the answer"),
        "{}",
        out.stdout
    );
    // A kata without a whole program says so.
    let plain = Repo::new();
    let out = plain.run(&["grade", "toy"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("no whole program"), "{}", out.stderr);
}

#[test]
fn the_interview_limit_grades_what_is_there_and_ends_the_attempt() {
    // 0.05 min = 3 s.
    let r = Repo::with_kata_toml(&program_toml("0.05", ""));
    let mut s = r.spawn(&["toy", "--mode", "interview"]);
    s.expect_within("Time is up (00:03)", Duration::from_secs(60));
    let end = s.expect("is pristine again");
    assert!(end.contains("Not passed within the 00:03 limit"), "{end}");
    s.finish();
    let e = &r.history()["attempts"][0];
    assert_eq!(e["result"], "failed");
    assert_eq!(e["duration_s"], 3.0);
}

#[test]
fn a_grading_asked_for_in_time_decides_even_when_the_limit_passes_meanwhile() {
    // The grading waits for the test's go-ahead, so the 3 s limit passes mid-grading.
    let r = Repo::with_kata_toml(&program_toml(
        "0.05",
        "while [ ! -f {repo}/.practice/go ]; do sleep 0.1; done; ",
    ));
    let mut s = r.spawn(&["toy", "--mode", "interview"]);
    s.expect("You have 00:03");
    r.write(PROGRAM_RS, SOLVED_PROGRAM);
    s.send("g");
    s.expect("the grading in progress decides");
    r.write(".practice/go", "");
    let end = s.expect("is pristine again");
    assert!(end.contains("✓ main: prints the answer"), "{end}");
    assert!(end.contains("✓ Passed in 00:0"), "{end}");
    s.finish();
    let e = &r.history()["attempts"][0];
    assert_eq!(e["result"], "passed");
    assert!(
        e["duration_s"].as_f64().unwrap() < 3.0,
        "the time of the request counts: {e}"
    );
    assert_eq!(e["gradings"], 1);
}

// ---------------------------------------------------------------- hint, solution

#[test]
fn hint_prints_and_counts_in_a_guided_attempt_and_is_refused_in_a_timed_one() {
    let r = Repo::new();
    r.run(&["hint", "toy", "greet"], "")
        .ok()
        .has("Hint — step 2 Greet someone")
        .has("format!(\"Hello, {name}!\")");
    r.run(&["hint", "toy", "9"], "")
        .failed()
        .has("kata `toy` has steps 1 to 3, not 9");
    r.run(&["hint", "nope", "1"], "")
        .failed()
        .has("no kata `nope`; the katas are: toy");

    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    s.send("p");
    s.finish();
    r.run(&["hint", "toy", "2"], "")
        .ok()
        .has("(hints used this attempt: 1)");
    r.run(&["hint", "toy", "step_02_greet"], "")
        .ok()
        .has("(hints used this attempt: 1)");
    assert_eq!(r.current().unwrap()["hints"], serde_json::json!([2]));

    r.run(&["reset", "toy"], "").ok();
    let mut s = r.spawn(&["toy", "-m", "timed"]);
    s.expect("0/3 steps green");
    s.send("p");
    s.finish();
    r.run(&["hint", "toy", "1"], "")
        .failed()
        .has("no hints during a timed attempt");
}

#[test]
fn the_solution_opens_only_after_an_attempt_has_ended() {
    let r = Repo::new();
    r.run(&["solution", "toy"], "")
        .failed()
        .has("opens after your first attempt at it ends");
    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    s.send("p");
    s.finish();
    r.run(&["solution", "toy"], "")
        .failed()
        .has("an attempt on `toy` is in progress");
    r.run(&["reset", "toy"], "")
        .ok()
        .has("ended the paused guided attempt");
    r.run(&["solution", "toy"], "")
        .ok()
        .has("// ===== solutions/toy.rs =====\n// the toy reference");
}

#[test]
fn solution_levels_and_a_diff_against_the_last_attempt() {
    let toml = format!(
        "{}\n[levels]\nbeginner = \"solutions/toy_beginner.rs\"\nintermediate = \"solutions/toy.rs\"\n",
        program_toml("20", "")
    );
    let r = Repo::with_kata_toml(&toml);
    r.write(
        "solutions/toy_beginner.rs",
        "// every line explained\nfn main() {}\n",
    );
    let mut s = r.spawn(&["toy", "-m", "interview"]);
    s.expect("You have 20:00");
    r.write(
        PROGRAM_RS,
        "fn main() {\n    println!(\"solved, by me\");\n}\n",
    );
    s.send("g");
    s.expect("is pristine again");
    s.finish();
    r.run(&["solution", "toy", "--level", "beginner"], "")
        .ok()
        .has("// ===== solutions/toy_beginner.rs =====\n// every line explained");
    r.run(&["solution", "toy", "--level", "guru"], "")
        .failed()
        .has("`toy` has the levels beginner, intermediate, not `guru`");
    let out = r.run(&["solution", "toy", "--diff"], "");
    out.ok();
    assert!(
        out.stdout
            .contains("--- your last attempt: .practice/attempts/"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(interview mode, passed)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-    println!(\"solved, by me\");"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("+pub fn double(x: i64) -> i64 { x * 2 }"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("runs/diff"), "{}", out.stdout);
}

// ---------------------------------------------------------------- reset

#[test]
fn reset_archives_the_changes_then_restores_the_pristine_kata() {
    let r = Repo::new();
    r.write(KATA_RS, SOLVED);
    r.write("katas/toy_kata/src/helpers.rs", "// my helper\n");
    r.write("katas/toy_kata/notes.md", "my notes\n");
    r.run(&["reset", "toy"], "")
        .ok()
        .has("toy: archived your changes in .practice/attempts/toy/edit-");
    assert_eq!(r.read(KATA_RS), PRISTINE);
    assert!(!r.file("katas/toy_kata/src/helpers.rs").exists());
    assert!(!r.file("katas/toy_kata/notes.md").exists());
    assert_eq!(r.git(&["status", "--porcelain"]), "");
    let archives = r.archives();
    assert_eq!(archives.len(), 1);
    let a = &archives[0];
    assert_eq!(
        std::fs::read_to_string(a.join("src/lib.rs")).unwrap(),
        SOLVED
    );
    assert_eq!(
        std::fs::read_to_string(a.join("src/helpers.rs")).unwrap(),
        "// my helper\n"
    );
    assert_eq!(
        std::fs::read_to_string(a.join("notes.md")).unwrap(),
        "my notes\n"
    );
    assert!(
        std::fs::read_to_string(a.join("changes.patch"))
            .unwrap()
            .contains("-    todo!(\"step 1: double {x}\")")
    );
    r.run(&["reset", "toy"], "")
        .ok()
        .has("already pristine; nothing to do");
    assert_eq!(r.archives().len(), 1);
}

#[test]
fn reset_refuses_outside_a_git_checkout_and_touches_nothing() {
    let r = Repo::new();
    std::fs::remove_dir_all(r.file(".git")).unwrap();
    r.write(KATA_RS, SOLVED);
    r.run(&["reset", "toy"], "")
        .failed()
        .has("reset refused:")
        .has("is not a git checkout")
        .has("Nothing was changed");
    assert_eq!(r.read(KATA_RS), SOLVED);
    assert!(!r.file(".practice/attempts").exists());
    r.run(&["status"], "").ok().has("reset unavailable:");
}

#[test]
fn reset_refuses_while_files_outside_the_katas_are_modified() {
    let r = Repo::new();
    r.write(KATA_RS, SOLVED);
    r.write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"katas/*\"]\n# local edit\n",
    );
    r.run(&["reset", "--all"], "")
        .failed()
        .has("files outside katas/ are modified:\n   M Cargo.toml")
        .has("Nothing was changed");
    assert_eq!(r.read(KATA_RS), SOLVED);
    assert!(r.read("Cargo.toml").contains("# local edit"));
    assert!(!r.file(".practice/attempts").exists());
}

#[test]
fn reset_refused_for_other_modified_files_advises_a_stash_that_spares_the_katas_or_force() {
    let r = Repo::new();
    r.write(KATA_RS, SOLVED);
    r.write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"katas/*\"]\n# local edit\n",
    );
    let out = r.run(&["reset", "toy"], "");
    out.failed()
        .has("`cargo practice reset toy --force` does it anyway")
        .has("git stash push -- ':(exclude)katas'");
    assert!(!out.stderr.contains("(`git stash`)"), "{}", out.stderr);
    assert_eq!(r.read(KATA_RS), SOLVED);

    // The advised stash leaves the kata's changes where they are, so a reset archives them.
    r.git(&["stash", "push", "-q", "--", ":(exclude)katas"]);
    assert_eq!(r.read(KATA_RS), SOLVED);
    r.git(&["stash", "pop", "-q"]);

    r.run(&["reset", "toy", "--force"], "")
        .ok()
        .has("toy: archived your changes in .practice/attempts/toy/edit-");
    assert_eq!(r.read(KATA_RS), PRISTINE);
    assert!(
        r.read("Cargo.toml").contains("# local edit"),
        "only the kata's folder is touched"
    );
    assert_eq!(r.archives().len(), 1);
}

#[test]
fn the_menu_offers_to_reset_anyway_while_other_files_are_modified() {
    let r = Repo::new();
    r.write(KATA_RS, SOLVED);
    r.write("solutions/toy.rs", "// edited by a contributor\n");
    r.run(&[], "reset\n1\ny\ny\nquit\n")
        .ok()
        .has("Reset katas/toy_kata anyway? Only the kata folders are touched.")
        .has("toy: archived your changes in");
    assert_eq!(r.read(KATA_RS), PRISTINE);
    assert_eq!(r.read("solutions/toy.rs"), "// edited by a contributor\n");
}

#[test]
fn an_attempt_that_ends_while_other_files_are_modified_is_archived_but_not_restored() {
    let r = Repo::new();
    r.write("solutions/toy.rs", "// edited by a contributor\n");
    let mut s = r.spawn(&["toy"]);
    s.expect("0/3 steps green");
    r.write(KATA_RS, SOLVED);
    let end = s.expect("was NOT restored");
    assert!(end.contains("files outside katas/ are modified"), "{end}");
    let advice = s.expect("does it anyway");
    assert!(
        advice.contains("`cargo practice reset toy --force`"),
        "{advice}"
    );
    s.finish();
    assert_eq!(r.read(KATA_RS), SOLVED, "left as it is");
    assert_eq!(r.history()["attempts"][0]["result"], "passed");
    assert_eq!(r.archives().len(), 1);
}

#[test]
fn reset_all_ends_a_paused_attempt_as_reset() {
    let r = Repo::new();
    let mut s = r.spawn(&["toy", "-m", "timed"]);
    s.expect("0/3 steps green");
    r.write(KATA_RS, &step_one_solved());
    s.expect("1/3 steps green");
    s.send("p");
    s.finish();
    r.run(&["reset", "--all"], "")
        .ok()
        .has("toy: ended the paused timed attempt");
    assert_eq!(r.read(KATA_RS), PRISTINE);
    assert_eq!(r.history()["attempts"][0]["result"], "reset");
    assert!(r.current().is_none());
    r.run(&["reset"], "").failed().has("required");
}

// ---------------------------------------------------------------- history, status, levels

const PREPARED_HISTORY: &str = r#"{
  "version": 1,
  "attempts": [
    {"kata": "toy", "mode": "guided", "started_at": "2026-05-01T09:00:00+00:00", "ended_at": "2026-05-01T09:40:00+00:00",
     "duration_s": 2100.0, "result": "passed", "hints_used": 3, "hinted_steps": [1, 2, 3],
     "splits": [{"step": 1, "test": "step_01_double", "at_s": 600.0}, {"step": 2, "test": "step_02_greet", "at_s": 1500.0}, {"step": 3, "test": "step_03_total", "at_s": 2100.0}]},
    {"kata": "toy", "mode": "timed", "file": "program", "started_at": "2026-05-02T09:00:00+00:00", "ended_at": "2026-05-02T09:20:00+00:00",
     "duration_s": 1150.0, "result": "passed", "hints_used": 0},
    {"kata": "toy", "mode": "timed", "started_at": "2026-05-03T09:00:00+00:00", "ended_at": "2026-05-03T09:08:00+00:00",
     "duration_s": 480.0, "result": "abandoned", "hints_used": 0},
    {"kata": "toy", "mode": "interview", "file": "program", "started_at": "2026-05-04T09:00:00+00:00", "ended_at": "2026-05-04T09:12:00+00:00",
     "duration_s": 700.0, "result": "passed", "hints_used": 0},
    {"kata": "toy", "mode": "interview", "file": "program", "started_at": "2026-05-05T09:00:00+00:00", "ended_at": "2026-05-05T09:11:00+00:00",
     "duration_s": 650.0, "result": "passed", "hints_used": 0},
    {"kata": "gone", "mode": "timed", "started_at": "2026-05-05T10:00:00+00:00", "ended_at": "2026-05-05T10:11:00+00:00",
     "duration_s": 650.0, "result": "passed", "hints_used": 0}
  ]
}
"#;

#[test]
fn history_shows_the_table_the_chart_bests_and_levels() {
    let r = Repo::new();
    r.run(&["history"], "").ok().has("No attempts yet.");
    r.write(".practice/history.json", PREPARED_HISTORY);
    let out = r.run(&["history"], "");
    out.ok();
    insta::assert_snapshot!("history", out.stdout);
    // Level: best hint-free whole-program pass 10:50 => Advanced; a third interview pass
    // within 12:00 => Interview Ready.
    assert!(out.stdout.contains("toy       Advanced         next: Expert: pass the whole program without hints in under 10:00 (best whole program: 10:50)"));
    let third = PREPARED_HISTORY.replace(
        "\n  ]\n}",
        r#",
    {"kata": "toy", "mode": "interview", "file": "program", "started_at": "2026-05-06T09:00:00+00:00", "ended_at": "2026-05-06T09:12:00+00:00",
     "duration_s": 719.0, "result": "passed", "hints_used": 0}
  ]
}"#,
    );
    r.write(".practice/history.json", &third);
    r.run(&["history", "--kata", "toy", "--last", "2"], "")
        .ok()
        .has("Attempts (6 in all, the last 2)")
        .has("toy       Interview Ready  top level reached");
    r.write(".practice/history.json", "{ broken");
    r.run(&["history"], "")
        .failed()
        .has(".practice/history.json is not a valid history file");
}

#[test]
fn status_shows_levels_files_and_the_next_suggestion() {
    let r = Repo::new();
    r.write(".practice/history.json", PREPARED_HISTORY);
    r.write(KATA_RS, SOLVED);
    let out = r.run(&["status"], "");
    out.ok();
    settings(&r).bind(|| insta::assert_snapshot!("status", out.stdout));
}

// ---------------------------------------------------------------- menu

#[test]
fn the_menu_answers_typed_choices_when_stdin_is_not_a_terminal() {
    let r = Repo::new();
    let out = r.run(&[], "guide\nhistory\n2\nwhat\nquit\n");
    out.ok()
        .has("What now?")
        .has("   1) toy      Toy kata: three small steps          not tried yet")
        .has("Learning path")
        .has("No attempts yet")
        .has("In progress  none")
        .has("No choice `what`: type a number from 1 to 8");
    // End of input leaves the menu quietly.
    r.run(&[], "").ok();
}

#[test]
fn the_menu_starts_a_mode_and_runs_reference_commands() {
    let toml = format!(
        "{KATA_TOML}\n[[reference.run]]\ntitle = \"Produce\"\ncmd = [\"sh\", \"-c\", \"echo producing to {{broker}}\"]\nwhen = \"broker\"\n\n[[reference.run]]\ntitle = \"Pipeline\"\ncmd = [\"sh\", \"-c\", \"echo pipeline on {{broker}} group {{group}}\"]\n\n[[reference.run]]\ntitle = \"Preview\"\ncmd = [\"printf\", \"id,name\\\\n1,Ada\\\\n2,Bob\\\\n\"]\noutput = \"csv\"\npreview_rows = 1\n\n[[reference.run]]\ntitle = \"Cargo\"\ncmd = [\"cargo\", \"--version\"]\n"
    );
    let r = Repo::with_kata_toml(&toml);
    let out = r.run(&[], "toy\nreference\nquit\n");
    out.ok()
        .has("▶ Pipeline")
        .has("pipeline on mock group practice-toy-")
        .has("| id | name |\n+----+------+\n| 1  | Ada  |\n+----+------+\n1 of 2 rows shown")
        .has("Reference run finished")
        // The cargo that runs the launcher, named as kata.toml names it.
        .has("  $ cargo --version\n");
    assert!(
        !out.stdout.contains("producing"),
        "the producer runs only with a broker\n{}",
        out.all()
    );
    let out = r.run(&["toy", "--mode", "reference"], "");
    out.ok();
    let with_broker = r
        .cmd(&["toy", "-m", "reference"])
        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&with_broker.stdout);
    assert!(
        text.contains("producing to 127.0.0.1:9092") && text.contains("pipeline on 127.0.0.1:9092"),
        "{text}"
    );

    let mut s = r.spawn(&[]);
    s.send("1");
    s.send("timed");
    s.expect("0/3 steps green");
    s.send("p");
    s.expect("Attempt saved (paused)");
    s.finish();
    assert_eq!(r.current().unwrap()["mode"], "timed");
}

#[test]
fn starting_on_a_modified_kata_offers_to_archive_or_keep_the_changes() {
    let r = Repo::new();
    r.write(KATA_RS, &step_one_solved());
    r.run(&["toy", "-m", "timed"], "cancel\n")
        .ok()
        .has("has changes made outside an attempt")
        .has("Nothing started.");
    assert_eq!(r.read(KATA_RS), step_one_solved());
    let mut s = r.spawn(&["toy"]);
    s.send("keep");
    s.expect("1/3 steps green");
    s.send("p");
    s.finish();
    r.run(&["reset", "toy"], "").ok();
    r.write(KATA_RS, &step_one_solved());
    let mut s = r.spawn(&["toy", "-m", "timed"]);
    s.send("fresh");
    s.expect("is pristine.");
    s.expect("0/3 steps green");
    s.send("p");
    s.finish();
    assert_eq!(
        r.archives().len(),
        2,
        "the guided attempt's and the fresh start's"
    );
}
