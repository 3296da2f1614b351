//! What a run found, as one stream of [`RunEvent`]s: every report (the console,
//! JUnit, cucumber JSON, the HTML timeline, the kill matrix) is written from the
//! same [`ScenarioResult`]s, so a failure travels one path.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::suite::ScenarioInfo;
use crate::timeline::Event;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step held, and nothing broke a holding expectation or crashed the
    /// board before the scenario ended.
    Passed,
    /// An expectation did not hold, or was inconclusive (the evidence it needs
    /// never came), or the board crashed.
    Failed,
    /// The harness could not run it (a board that does not answer, a flash that
    /// failed): says nothing about the firmware.
    Error,
    /// It never ran (the run was interrupted before its turn).
    NotRun,
}

impl Status {
    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::NotRun => "not run",
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It held.
    Passed,
    /// It did not hold.
    Failed,
    /// The evidence it needs never came.
    Inconclusive,
    /// The harness could not run it.
    Error,
    /// Not run (an earlier step failed).
    Skipped,
}

/// One step of a scenario, as run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// `Given`, `When`, `Then`, `And`...
    pub keyword: String,
    /// The step text, secrets redacted.
    pub text: String,
    /// Its line in the feature file.
    pub line: usize,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took.
    pub duration: Duration,
}

/// A crash that decided a failure.
#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    /// What happened, in one line.
    pub summary: String,
    /// The crash's code addresses decoded through the firmware's ELF
    /// (`0x40201b8c: session() at src/main.cpp:412`), when the ELF is known.
    pub backtrace: Vec<String>,
}

/// Why a scenario did not pass.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The step whose expectation failed, with its keyword (for a crash, the
    /// step that was running).
    pub step: String,
    /// Its line in the feature file.
    pub line: usize,
    /// What was expected, in words.
    pub expectation: String,
    /// What was seen instead.
    pub found: String,
    /// The evidence never came: the verdict is inconclusive (a failure).
    pub inconclusive: bool,
    /// The part of the timeline that decided it.
    pub window: Vec<Event>,
    /// The crash, when one decided it.
    pub crash: Option<CrashReport>,
}

impl Failure {
    /// The text every report shows: the step, what was expected, what was seen,
    /// the crash and its backtrace.
    pub fn message(&self) -> String {
        let mut text = format!(
            "{}{} (line {})\nexpected {}\nbut {}",
            if self.inconclusive {
                "inconclusive: "
            } else {
                ""
            },
            self.step,
            self.line,
            self.expectation,
            self.found
        );
        if let Some(crash) = &self.crash {
            text.push_str(&format!("\ncrash: {}", crash.summary));
            for frame in &crash.backtrace {
                text.push_str(&format!("\n  {frame}"));
            }
        }
        text
    }
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Which scenario.
    #[serde(skip)]
    pub info: ScenarioInfo,
    /// How it ended.
    pub status: Status,
    /// Every step, background included, with how it ended.
    pub steps: Vec<StepRecord>,
    /// Wall time, lab context up to down.
    pub duration: Duration,
    /// The harness's own share: lab context, flashing, reset and provisioning.
    pub overhead: Duration,
    /// From the harness's reset to the device accepting its provisioning (boot,
    /// prompt, the PROV line), when it was provisioned.
    pub provisioning: Option<Duration>,
    /// Why it did not pass.
    pub failure: Option<Failure>,
    /// What went wrong in the harness, for [`Status::Error`].
    pub error: Option<String>,
    /// The line of the step the harness could not run (0: the scenario's own).
    pub error_line: usize,
    /// Its artifacts (transcript, timeline, lab manifest).
    pub artifacts: PathBuf,
    /// The firmware it ran against.
    pub firmware: String,
    /// Every event of its device during the scenario, for the HTML timeline.
    #[serde(skip)]
    pub events: Vec<Event>,
}

impl ScenarioResult {
    /// A scenario that never ran.
    pub fn not_run(info: ScenarioInfo, firmware: &str) -> ScenarioResult {
        ScenarioResult {
            info,
            status: Status::NotRun,
            steps: Vec::new(),
            duration: Duration::ZERO,
            overhead: Duration::ZERO,
            provisioning: None,
            failure: None,
            error: None,
            error_line: 0,
            artifacts: PathBuf::new(),
            firmware: firmware.to_owned(),
            events: Vec::new(),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Scenario results in completion order.
    pub scenarios: Vec<ScenarioResult>,
    /// Wall time of the run, without the lab's start-up.
    pub duration: Duration,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The firmware the run flashed.
    pub firmware: String,
}

impl RunReport {
    /// How many scenarios ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.scenarios.iter().filter(|s| s.status == status).count()
    }

    /// The exit code the CLI returns: 0 all passed, 1 scenarios failed, 2 the
    /// harness could not run some of them.
    pub fn exit_code(&self) -> u8 {
        if self.count(Status::Error) + self.count(Status::NotRun) > 0 {
            2
        } else if self.count(Status::Failed) > 0 {
            1
        } else {
            0
        }
    }
}

/// Something a run reports while it goes: the one stream every report reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunEvent {
    /// Boards are being prepared (flashed with the run's firmware).
    Preparing {
        /// How many boards.
        boards: usize,
        /// The firmware.
        firmware: String,
    },
    /// A scenario started on a board.
    Started {
        /// Which.
        info: ScenarioInfo,
    },
    /// A scenario finished (or will never run).
    Finished {
        /// How.
        result: Box<ScenarioResult>,
    },
}
