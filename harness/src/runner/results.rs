//! What a run found, scenario by scenario: the values the console summary, the
//! HTML report and the kill matrix are written from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::suite::ScenarioInfo;
use crate::timeline::Event;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// The harness could not run it (a board that does not answer, a flash that
    /// failed): says nothing about the firmware.
    Error,
    /// Not run.
    Skipped,
}

impl Status {
    /// The word reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// Why a scenario did not pass.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The step, with its keyword, e.g. `Then the TLS handshake does not complete`.
    pub step: String,
    /// Its line in the feature file.
    pub line: usize,
    /// What was expected, in words.
    pub expectation: String,
    /// What was seen instead.
    pub found: String,
    /// The part of the timeline that decided it.
    pub window: Vec<Event>,
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Which scenario.
    #[serde(skip)]
    pub info: ScenarioInfo,
    /// How it ended.
    pub status: Status,
    /// Wall time, lab context up to down.
    pub duration: Duration,
    /// The harness's own share: lab context, flashing, reset and provisioning.
    pub overhead: Duration,
    /// From the harness's reset to the device accepting its provisioning (boot,
    /// prompt, the PROV line), when it was provisioned.
    pub provisioning: Option<Duration>,
    /// The first failure, when it failed.
    pub failure: Option<Failure>,
    /// Its artifacts (transcript, timeline, lab manifest).
    pub artifacts: PathBuf,
    /// The firmware it ran against.
    pub firmware: String,
    /// Every event of its device during the scenario, for the HTML timeline.
    #[serde(skip)]
    pub events: Vec<Event>,
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
}

impl RunReport {
    /// How many scenarios ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.scenarios.iter().filter(|s| s.status == status).count()
    }

    /// The exit code the CLI returns: 0 all passed, 1 scenarios failed, 2 the
    /// harness could not run some of them.
    pub fn exit_code(&self) -> u8 {
        if self.count(Status::Error) > 0 {
            2
        } else if self.count(Status::Failed) > 0 {
            1
        } else {
            0
        }
    }
}

/// Something a run reports while it goes, for live progress.
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
    /// A scenario finished.
    Finished {
        /// How.
        result: Box<ScenarioResult>,
    },
}
