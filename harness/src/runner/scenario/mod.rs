//! One scenario: its board lease, its slice of the lab (the policy for its
//! device's address), its console session, what its device did (read once,
//! through its log profile), and its steps. Given and When steps arrange and act
//! ([`arrange`]); Then steps are judged by the pure expectations of
//! [`super::expect`], driven by a small waiter ([`verify`]).

mod arrange;
mod artifacts;
mod verify;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cucumber::gherkin;

use super::board::Lease;
use super::context::RunContext;
use super::expect::{Expectation, Mark, Observed, Scene};
use super::plan::{PlannedStep, ScenarioPlan};
use super::results::{Failure, ScenarioResult, Status, StepOutcome, StepRecord};
use super::steps::Step;
use super::suite::ScenarioInfo;
use super::Interrupt;
use crate::lab::{DevicePolicy, LabMqttClient};
use crate::logprofile::{LogProfile, SemanticEvent};
use crate::pki::ProfileId;
use crate::serial::session::ConsoleSession;
use crate::timeline::{BoardEvent, Cursor, Event, EventKind, HarnessEvent, Source, Timeline};

/// Why a step did not go through.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    /// The firmware: an expectation failed or was inconclusive, a holding one
    /// broke, or the board crashed.
    Verdict(Box<Failure>),
    /// The harness could not do its part (says nothing about the firmware).
    Harness(String),
    /// The run was stopped: the scenario ends where it is, not run.
    Interrupted,
}

impl Problem {
    pub(crate) fn harness(message: impl std::fmt::Display) -> Problem {
        Problem::Harness(message.to_string())
    }
}

pub(crate) type StepResult = Result<(), Problem>;

/// What the device did since the scenario started, each event read once.
#[derive(Debug, Default)]
pub(crate) struct DeviceView {
    cursor: Option<Cursor>,
    device: Option<IpAddr>,
    events: Vec<Observed>,
}

impl DeviceView {
    /// Reads what the timeline recorded for the device since the last call.
    fn refresh(&mut self, timeline: &Timeline, log: &LogProfile) {
        let (Some(cursor), Some(device)) = (self.cursor, self.device) else {
            return;
        };
        let fresh = timeline.since(cursor);
        if let Some(last) = fresh.last() {
            self.cursor = Some(last.cursor_after());
        }
        self.events.extend(
            fresh
                .into_iter()
                .filter(|e| e.device == Some(device))
                .map(|e| Observed::new(e, log)),
        );
    }

    /// Reads every line again through another log profile.
    fn reread(&mut self, log: &LogProfile) {
        let events = std::mem::take(&mut self.events);
        self.events = events
            .into_iter()
            .map(|o| Observed::new(o.event, log))
            .collect();
    }

    /// Waits for the device's next event, or until `until_us` at the latest,
    /// or until the run is interrupted.
    async fn wait(&self, timeline: &Timeline, until_us: u64, interrupt: &Interrupt) {
        let left = Duration::from_micros(until_us.saturating_sub(timeline.now_us()));
        if left.is_zero() {
            return;
        }
        let next = async {
            match (self.cursor, self.device) {
                (Some(cursor), Some(device)) => {
                    timeline
                        .wait_for(cursor, left, |e| e.device == Some(device))
                        .await;
                }
                _ => tokio::time::sleep(left).await,
            }
        };
        tokio::select! {
            _ = next => {}
            _ = interrupt.triggered() => {}
        }
    }

    pub(crate) fn events(&self) -> &[Observed] {
        &self.events
    }
}

/// An expectation that passed its step and keeps holding until the scenario ends.
#[derive(Debug, Clone)]
struct Holding {
    expectation: Expectation,
    step: String,
    line: usize,
}

/// Everything one scenario holds. Created empty by cucumber; the run's `before`
/// hook gives it the run context.
#[derive(Default)]
pub struct ScenarioWorld {
    ctx: Option<Arc<RunContext>>,
    info: Option<ScenarioInfo>,
    /// The scenario's steps, parsed once.
    plan: ScenarioPlan,
    lease: Option<Lease>,
    policy: DevicePolicy,
    presented: Option<ProfileId>,
    provision: bool,
    credentials: Option<(String, String)>,
    log: Option<Arc<LogProfile>>,
    session: Option<ConsoleSession>,
    firmware: Option<String>,
    started: Option<Instant>,
    overhead: Duration,
    /// Where the last When step acted: "within" deadlines count from here.
    act: Option<Mark>,
    view: DeviceView,
    holding: Vec<Holding>,
    /// The scenario says `the board reboots within`: the index of the step
    /// whose act that window counts from (`Some(None)`: the scenario's start).
    reboot_window_step: Option<Option<usize>>,
    /// From here on a reboot is what the scenario expects, not a crash.
    reboot_expected_from: Option<Mark>,
    /// Names a DNS query for is an attempt to reach the broker.
    broker_names: Vec<String>,
    /// The step being run: keyword and text (redacted), line.
    current: Option<(String, usize)>,
    /// The run was stopped before or while this scenario ran.
    interrupted: bool,
    last_step_done: Option<u64>,
    steps: Vec<StepRecord>,
    failure: Option<Failure>,
    error: Option<String>,
    /// The line of the step the harness could not run.
    error_line: usize,
    mqtt: Option<LabMqttClient>,
    /// Topics the harness published retained messages to: cleared when the
    /// scenario ends, so no later scenario's device receives them.
    retained: Vec<String>,
    artifacts: Option<PathBuf>,
}

impl std::fmt::Debug for ScenarioWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioWorld")
            .field("scenario", &self.info.as_ref().map(|i| i.location()))
            .field("device", &self.device())
            .field("firmware", &self.firmware)
            .finish_non_exhaustive()
    }
}

impl cucumber::World for ScenarioWorld {
    type Error = std::convert::Infallible;

    async fn new() -> Result<Self, Self::Error> {
        Ok(ScenarioWorld {
            provision: true,
            ..ScenarioWorld::default()
        })
    }
}

pub(crate) use super::plan::redacted_step;

fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = s.split('-').filter(|p| !p.is_empty()).collect();
    parts.join("-").chars().take(60).collect()
}

impl ScenarioWorld {
    pub(crate) fn ctx(&self) -> Result<Arc<RunContext>, Problem> {
        self.ctx
            .clone()
            .ok_or_else(|| Problem::harness("the scenario has no run context"))
    }

    pub(crate) fn device(&self) -> Option<IpAddr> {
        self.lease.as_ref().map(|l| l.device())
    }

    pub(crate) fn log(&self) -> Arc<LogProfile> {
        match (&self.log, &self.ctx) {
            (Some(log), _) => log.clone(),
            (None, Some(ctx)) => ctx.log_profile.clone(),
            (None, None) => Arc::new(LogProfile::reference()),
        }
    }

    fn scene(&self, ctx: &RunContext) -> Scene {
        Scene {
            log: self.log(),
            settle: ctx.settle,
            quiet: ctx.quiet,
            broker_names: self.broker_names.clone(),
            joins_by_dhcp: ctx.lab.network().is_some(),
        }
    }

    fn mark(ctx: &RunContext) -> Mark {
        Mark {
            seq: ctx.timeline.cursor().seq(),
            t_us: ctx.timeline.now_us(),
        }
    }

    /// Where "within" counts from: the last When, else the scenario's start.
    fn act_point(&self, ctx: &RunContext) -> Mark {
        self.act.unwrap_or_else(|| Self::mark(ctx))
    }

    fn note(&self, ctx: &RunContext, what: HarnessEvent) {
        ctx.timeline
            .record(Source::Harness, self.device(), EventKind::Harness { what });
    }

    /// Starts following the device's events (once a board is leased), from the
    /// scenario's start.
    fn follow(&mut self, ctx: &RunContext, device: IpAddr) {
        if self.view.device.is_none() {
            self.view.device = Some(device);
            let log = self.log();
            self.view.refresh(&ctx.timeline, &log);
        }
    }

    fn refresh(&mut self, ctx: &RunContext) {
        let log = self.log();
        self.view.refresh(&ctx.timeline, &log);
    }

    pub(crate) fn begin(
        &mut self,
        ctx: Arc<RunContext>,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
    ) {
        let info = ScenarioInfo {
            feature: feature.name.clone(),
            path: feature.path.clone().unwrap_or_default(),
            name: scenario.name.clone(),
            line: scenario.position.line,
            tags: feature.tags.iter().chain(&scenario.tags).cloned().collect(),
        };
        let number = ctx.next_number();
        let stem = info
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.artifacts = Some(ctx.run_dir.join("scenarios").join(format!(
            "{number:03}-{}",
            slug(&format!("{stem}-{}", info.name))
        )));
        self.plan = ScenarioPlan::of(feature, scenario);
        self.reboot_window_step = self.plan.reboot_window_step();
        if self.reboot_window_step == Some(None) {
            self.reboot_expected_from = Some(Self::mark(&ctx));
        }
        let parsed: Vec<Step> = self.plan.parsed().cloned().collect();
        for step in &parsed {
            if let Step::ProvisionedCredentials { password, .. }
            | Step::BrokerRequiresCredentials { password, .. } = step
            {
                ctx.secrets().add(password);
            }
        }
        self.view.cursor = Some(ctx.timeline.cursor());
        // An unprovisioned run: as if every scenario said `Given the board is
        // not provisioned` (the suite was checked for steps that need it).
        if ctx.unprovisioned {
            self.provision = false;
        }
        self.broker_names = ctx.broker_names.clone();
        for step in &parsed {
            match step {
                Step::DnsResolvesToLab(host) | Step::DnsDoesNotResolve(host) => {
                    self.broker_names.push(host.clone())
                }
                _ => {}
            }
        }
        self.interrupted = ctx.interrupt.is_triggered();
        if !self.interrupted {
            (ctx.progress)(super::RunEvent::Started { info: info.clone() });
        }
        self.info = Some(info);
        self.started = Some(Instant::now());
        self.ctx = Some(ctx);
    }

    /// Runs one step (Given, When or Then alike: the text says which).
    pub(crate) async fn execute(&mut self, step: &gherkin::Step) -> StepResult {
        let began = Instant::now();
        let ctx = self.ctx()?;
        // The plan holds this step already parsed, at the position it runs in.
        let planned = match self.plan.steps().get(self.steps.len()) {
            Some(p) if p.line == step.position.line => p.clone(),
            _ => PlannedStep::of(step),
        };
        let PlannedStep {
            keyword,
            shown: text,
            parsed,
            ..
        } = planned;
        let shown = format!("{keyword} {text}");
        self.current = Some((shown.clone(), step.position.line));
        self.note(
            &ctx,
            HarnessEvent::StepStarted {
                step: shown,
                line: step.position.line,
            },
        );
        if self.interrupted || ctx.interrupt.is_triggered() {
            self.interrupted = true;
            return Err(Problem::Interrupted);
        }
        let result = match parsed {
            Err(e) => Err(Problem::harness(e)),
            Ok(parsed) => match self.broken(&ctx) {
                Some(failure) => Err(Problem::Verdict(Box::new(failure))),
                None => self.run(&ctx, parsed).await,
            },
        };
        if matches!(result, Err(Problem::Interrupted)) {
            self.interrupted = true;
            return result;
        }
        let outcome = match &result {
            Ok(()) => StepOutcome::Passed,
            Err(Problem::Verdict(f)) if f.inconclusive => StepOutcome::Inconclusive,
            Err(Problem::Verdict(_)) => StepOutcome::Failed,
            Err(Problem::Harness(_)) => StepOutcome::Error,
            Err(Problem::Interrupted) => StepOutcome::Skipped,
        };
        self.steps.push(StepRecord {
            keyword,
            text,
            line: step.position.line,
            outcome,
            duration: began.elapsed(),
        });
        self.last_step_done = Some(ctx.timeline.now_us());
        if let Err(problem) = &result {
            self.record(&ctx, problem.clone());
        }
        result
    }

    async fn run(&mut self, ctx: &RunContext, step: Step) -> StepResult {
        let reached = Self::mark(ctx);
        if self.reboot_window_step == Some(Some(self.steps.len())) {
            self.reboot_expected_from = Some(reached);
        }
        match Expectation::for_step(&step, reached, self.act_point(ctx)) {
            Some(expectation) => self.verify(ctx, expectation).await,
            None if step == Step::TranscriptMatchesSnapshot => self.snapshot(ctx).await,
            None => self.arrange(ctx, step).await,
        }
    }

    /// Keeps the first problem; a harness problem makes the scenario an error.
    fn record(&mut self, ctx: &RunContext, problem: Problem) {
        match problem {
            Problem::Verdict(failure) => {
                self.note(
                    ctx,
                    HarnessEvent::StepFailed {
                        expectation: failure.expectation.clone(),
                        inconclusive: failure.inconclusive,
                    },
                );
                if self.failure.is_none() {
                    self.failure = Some(*failure);
                }
            }
            Problem::Interrupted => self.interrupted = true,
            Problem::Harness(message) => {
                ctx.timeline.record(
                    Source::Harness,
                    self.device(),
                    EventKind::Diagnostic {
                        text: format!("the harness could not run the step: {message}"),
                    },
                );
                if self.error.is_none() {
                    self.error = Some(message);
                    self.error_line = self.current.as_ref().map_or(0, |(_, line)| *line);
                }
            }
        }
    }

    /// Ends the scenario: the holding expectations get their time, the board goes
    /// back to reset and to the pool, the artifacts and the result are written.
    pub(crate) async fn end(
        &mut self,
        ctx: &RunContext,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        finished: &cucumber::event::ScenarioFinished,
    ) {
        use cucumber::event::ScenarioFinished as F;
        if let F::StepFailed(_, _, cucumber::event::StepError::Panic(payload)) = finished {
            // A step that panicked without going through `execute`'s bookkeeping
            // is a bug of the harness, never a verdict on the firmware.
            if self.failure.is_none() && self.error.is_none() {
                let text = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a step panicked".into());
                self.error = Some(text);
            }
        }
        if let F::BeforeHookFailed(_) = finished {
            self.error = Some("the scenario could not be set up".into());
        }
        if self.failure.is_none()
            && self.error.is_none()
            && self.lease.is_some()
            && !self.interrupted
        {
            if let Err(problem) = self.finish(ctx).await {
                self.record(ctx, problem);
            }
        }
        let teardown = Instant::now();
        if let Err(Problem::Harness(message)) = self.stop_session().await {
            if self.failure.is_some() {
                // The firmware already failed: a console that will not close
                // (a crash that took a USB serial link with it) must not turn
                // that verdict into a harness error.
                ctx.timeline.record(
                    Source::Harness,
                    self.device(),
                    EventKind::Diagnostic {
                        text: format!(
                            "after the scenario failed, its console did not close: {message}"
                        ),
                    },
                );
            } else {
                self.error.get_or_insert(message);
            }
        }
        if let Some(device) = self.device() {
            if let Some(client) = &self.mqtt {
                for topic in std::mem::take(&mut self.retained) {
                    // An empty retained message deletes the broker's retained
                    // one; like the message, it is for this device alone.
                    ctx.lab.address_publish(device, &topic, &[]);
                    let _ = client.publish_with(&topic, Vec::new(), 1, true).await;
                }
            }
            ctx.lab.release_device(device);
        }
        self.mqtt = None;
        let events: Vec<Event> = self.view.events().iter().map(|o| o.event.clone()).collect();
        let artifacts = self
            .artifacts
            .clone()
            .unwrap_or_else(|| ctx.run_dir.join("scenarios"));
        if let Err(e) = self.write_artifacts(ctx, &artifacts, &events) {
            ctx.timeline.record(
                Source::Harness,
                None,
                EventKind::Diagnostic {
                    text: format!("could not write artifacts to {}: {e}", artifacts.display()),
                },
            );
        }
        self.overhead += teardown.elapsed();
        let status = if self.interrupted {
            self.error = Some("the run was interrupted before this scenario ended".into());
            Status::NotRun
        } else if self.error.is_some() {
            Status::Error
        } else if self.failure.is_some() {
            Status::Failed
        } else {
            Status::Passed
        };
        let mut steps = std::mem::take(&mut self.steps);
        let plan = if self.plan.steps().is_empty() {
            ScenarioPlan::of(feature, scenario)
        } else {
            std::mem::take(&mut self.plan)
        };
        for step in plan.steps().iter().skip(steps.len()) {
            steps.push(StepRecord {
                keyword: step.keyword.clone(),
                text: step.shown.clone(),
                line: step.line,
                outcome: StepOutcome::Skipped,
                duration: Duration::ZERO,
            });
        }
        let result = ScenarioResult {
            info: self.info.clone().unwrap_or_else(|| ScenarioInfo {
                feature: feature.name.clone(),
                path: feature.path.clone().unwrap_or_default(),
                name: scenario.name.clone(),
                line: scenario.position.line,
                tags: Vec::new(),
            }),
            status,
            steps,
            duration: self.started.map(|s| s.elapsed()).unwrap_or_default(),
            overhead: self.overhead,
            provisioning: provisioning_time(&events, &self.log()),
            failure: self.failure.clone(),
            error: self.error.clone(),
            error_line: self.error_line,
            artifacts,
            firmware: self
                .firmware
                .clone()
                .unwrap_or_else(|| crate::runner::FIRMWARE_AS_FOUND.into()),
            events,
        };
        ctx.finished(result);
        // The board goes back to the pool before anything else can fail.
        self.lease = None;
    }
}

/// From the first harness reset to the device's `prov ok`.
fn provisioning_time(events: &[Event], log: &LogProfile) -> Option<Duration> {
    let reset = events.iter().find(|e| {
        matches!(
            &e.kind,
            EventKind::Board {
                what: BoardEvent::Reset
            }
        )
    })?;
    let ok = events.iter().find(|e| {
        e.seq > reset.seq
            && matches!(&e.kind, EventKind::SerialLine { line }
                if log.recognise(line).is_some_and(|r| r.event == SemanticEvent::ProvOk))
    })?;
    Some(Duration::from_micros(ok.t_us.saturating_sub(reset.t_us)))
}
