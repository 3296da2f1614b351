//! The waiter that drives the pure expectations: judge, and when the answer is
//! "not yet", wait for the device's next event or the instant given, then judge
//! again. Holding expectations and the crash watch are asked on every wake, and
//! once more through the grace window after the last step.

use std::time::{Duration, Instant};

use super::{Holding, Problem, ScenarioWorld, StepResult};
use crate::crash::{Crash, Symbols};
use crate::runner::context::{RunContext, SnapshotMode};
use crate::runner::expect::{crash_watch, CrashWatch, Expectation, Finding, Judgement, Verdict};
use crate::runner::results::{CrashReport, Failure};
use crate::timeline::{Event, EventKind};

/// How much of the timeline a failure shows at most.
const WINDOW_EVENTS: usize = 40;

/// How long the console must stay quiet before a transcript is compared, so a
/// line the device is printing right now is not cut in half of the runs.
const QUIET: Duration = Duration::from_millis(300);
const QUIET_AT_MOST: Duration = Duration::from_secs(3);

impl ScenarioWorld {
    /// A Then step: judged until decided; a pass that holds is kept for later.
    pub(super) async fn verify(
        &mut self,
        ctx: &RunContext,
        expectation: Expectation,
    ) -> StepResult {
        if self.lease.is_none() {
            return Err(Problem::harness(
                "no board yet: start the scenario with `Given the board under test`",
            ));
        }
        loop {
            if ctx.interrupt.is_triggered() {
                return Err(Problem::Interrupted);
            }
            self.refresh(ctx);
            if let Some(broken) = self.broken(ctx) {
                return Err(Problem::Verdict(Box::new(broken)));
            }
            let scene = self.scene(ctx);
            let now = ctx.timeline.now_us();
            match expectation.judge(&scene, self.view.events(), now) {
                Judgement::Decided(Verdict::Pass) => {
                    if expectation.holds() || expectation.watch_until(&scene).is_some() {
                        let (step, line) = self.current.clone().unwrap_or_default();
                        self.holding.push(Holding {
                            expectation,
                            step,
                            line,
                        });
                    }
                    return Ok(());
                }
                Judgement::Decided(Verdict::Fail(finding)) => {
                    let failure = self.failure_of(ctx, expectation.describe(), finding, false);
                    return Err(Problem::Verdict(Box::new(failure)));
                }
                Judgement::Decided(Verdict::Inconclusive(finding)) => {
                    let failure = self.failure_of(ctx, expectation.describe(), finding, true);
                    return Err(Problem::Verdict(Box::new(failure)));
                }
                Judgement::Pending { until_us } => {
                    self.view
                        .wait(&ctx.timeline, until_us, &ctx.interrupt)
                        .await;
                }
            }
        }
    }

    /// A holding expectation that no longer holds, or a crash: the first one.
    pub(super) fn broken(&mut self, ctx: &RunContext) -> Option<Failure> {
        self.refresh(ctx);
        let now = ctx.timeline.now_us();
        // From the act a `reboots within` step counts from, reboots are what
        // the scenario expects; before it they are crashes like any other.
        let before = self.reboot_expected_from.map(|m| m.seq);
        {
            if let CrashWatch::Crashed(seq, crash) = crash_watch(self.view.events(), now, before) {
                let from = self.view.events().first().map_or(seq, |o| o.seq());
                let finding = Finding {
                    found: format!("the board crashed: {}", crash.summary()),
                    from,
                    to: seq,
                    crash: Some(crash),
                };
                return Some(self.failure_of(
                    ctx,
                    "the board to run without crashing or rebooting on its own",
                    finding,
                    false,
                ));
            }
        }
        let scene = self.scene(ctx);
        let broken = self.holding.iter().find_map(|h| {
            match h.expectation.recheck(&scene, self.view.events(), now) {
                Some(Verdict::Fail(finding)) => Some((h.clone(), finding)),
                _ => None,
            }
        })?;
        let (holding, finding) = broken;
        let mut failure = self.failure_of(ctx, holding.expectation.describe(), finding, false);
        failure.step = holding.step;
        failure.line = holding.line;
        failure.expectation = format!("{} (until the scenario ends)", failure.expectation);
        Some(failure)
    }

    /// The end of a scenario whose steps all passed: the holding expectations
    /// are watched through the grace window after the last step (and as long as
    /// `does not reboot` or `at most N per D` need), so a crash 50 ms after the
    /// last step is this scenario's crash.
    pub(super) async fn finish(&mut self, ctx: &RunContext) -> StepResult {
        let scene = self.scene(ctx);
        let last = self.last_step_done.unwrap_or_else(|| ctx.timeline.now_us());
        let until = self
            .holding
            .iter()
            .filter_map(|h| h.expectation.watch_until(&scene))
            .chain(std::iter::once(last + ctx.grace.as_micros() as u64))
            .max()
            .unwrap_or(last);
        self.current = Some(("(after the last step)".into(), 0));
        self.hold_until(ctx, until).await?;
        // A crash report still arriving at the end is this scenario's crash:
        // its dump is waited for (bounded by the crash watch's quiet rule).
        loop {
            self.refresh(ctx);
            let before = self.reboot_expected_from.map(|m| m.seq);
            match crash_watch(self.view.events(), ctx.timeline.now_us(), before) {
                CrashWatch::Arriving { until_us } => {
                    self.view
                        .wait(&ctx.timeline, until_us, &ctx.interrupt)
                        .await;
                    if ctx.interrupt.is_triggered() {
                        return Err(Problem::Interrupted);
                    }
                }
                CrashWatch::Crashed(..) => {
                    return match self.broken(ctx) {
                        Some(failure) => Err(Problem::Verdict(Box::new(failure))),
                        None => Ok(()),
                    }
                }
                CrashWatch::Calm => break,
            }
        }
        // Nothing seen is not a pass: a holding expectation that never saw an
        // event of its kind is inconclusive.
        for holding in &self.holding {
            if let Some(Verdict::Inconclusive(finding)) =
                holding.expectation.conclude(self.view.events())
            {
                let mut failure =
                    self.failure_of(ctx, holding.expectation.describe(), finding, true);
                failure.step = holding.step.clone();
                failure.line = holding.line;
                return Err(Problem::Verdict(Box::new(failure)));
            }
        }
        Ok(())
    }

    /// Lets the device run until `until` (timeline µs), woken by every event:
    /// anything that breaks a holding expectation meanwhile ends the wait with
    /// that verdict, and Ctrl-C ends it as interrupted.
    pub(super) async fn hold_until(&mut self, ctx: &RunContext, until: u64) -> StepResult {
        loop {
            if ctx.interrupt.is_triggered() {
                return Err(Problem::Interrupted);
            }
            if let Some(broken) = self.broken(ctx) {
                return Err(Problem::Verdict(Box::new(broken)));
            }
            if ctx.timeline.now_us() >= until {
                return Ok(());
            }
            self.view.wait(&ctx.timeline, until, &ctx.interrupt).await;
        }
    }

    /// A failure as reports show it: the step, the window of the timeline that
    /// decided it, and a crash decoded through the firmware's ELF when known.
    pub(super) fn failure_of(
        &self,
        ctx: &RunContext,
        expectation: &str,
        finding: Finding,
        inconclusive: bool,
    ) -> Failure {
        let (step, line) = self.current.clone().unwrap_or_default();
        let window: Vec<Event> = self
            .view
            .events()
            .iter()
            .filter(|o| o.event.seq >= finding.from && o.event.seq <= finding.to)
            .map(|o| o.event.clone())
            .collect();
        let skip = window.len().saturating_sub(WINDOW_EVENTS);
        Failure {
            step,
            line,
            expectation: expectation.to_owned(),
            found: finding.found,
            inconclusive,
            window: window.into_iter().skip(skip).collect(),
            crash: finding.crash.map(|c| crash_report(ctx, &c)),
        }
    }

    /// `Then the transcript matches the snapshot`: waits for the console to go
    /// quiet, then compares the normalised transcript with the reviewed one.
    pub(super) async fn snapshot(&mut self, ctx: &RunContext) -> StepResult {
        let Some(device) = self.device() else {
            return Err(Problem::harness("no board yet"));
        };
        let begun = Instant::now();
        // Every new line restarts the wait.
        let mut from = ctx.timeline.cursor();
        while begun.elapsed() < QUIET_AT_MOST {
            let next = ctx
                .timeline
                .wait_for(from, QUIET, |e| {
                    e.device == Some(device) && matches!(e.kind, EventKind::SerialLine { .. })
                })
                .await;
            match next {
                Some(e) => from = e.cursor_after(),
                None => break,
            }
        }
        self.refresh(ctx);
        let events: Vec<Event> = self.view.events().iter().map(|o| o.event.clone()).collect();
        let transcript = crate::runner::snapshot::normalise(&events);
        let info = self
            .info
            .as_ref()
            .ok_or_else(|| Problem::harness("the scenario has no name"))?;
        let snapshot =
            crate::runner::snapshot::Snapshot::new(&ctx.snapshots_dir, &info.path, &info.name);
        if snapshot.matches(&transcript) {
            return Ok(());
        }
        let review = ctx.snapshots == SnapshotMode::Review;
        if review && snapshot.propose(&transcript) {
            return Ok(());
        }
        let (step, line) = self.current.clone().unwrap_or_default();
        Err(Problem::Verdict(Box::new(Failure {
            step,
            line,
            expectation: format!(
                "the transcript to match the snapshot {}",
                snapshot.path().display()
            ),
            found: if review {
                format!("it differs (review with `cargo insta review`, or accept with INSTA_UPDATE=always); the transcript was:\n{transcript}")
            } else {
                format!("it differs; the transcript was:\n{transcript}")
            },
            inconclusive: false,
            window: Vec::new(),
            crash: None,
        })))
    }
}

/// A crash for reports: its summary, and its backtrace when the ELF is known.
fn crash_report(ctx: &RunContext, crash: &Crash) -> CrashReport {
    let backtrace = match &ctx.elf {
        Some(path) => match Symbols::open(path) {
            Ok(symbols) => symbols
                .backtrace(crash)
                .iter()
                .map(ToString::to_string)
                .collect(),
            Err(e) => vec![format!("(no backtrace: {e})")],
        },
        None if crash.code_addresses().is_empty() => Vec::new(),
        None => vec![format!(
            "(addresses {}: give the firmware's ELF with --elf to decode them)",
            crash
                .code_addresses()
                .iter()
                .map(|a| format!("0x{a:08x}"))
                .collect::<Vec<_>>()
                .join(" ")
        )],
    };
    CrashReport {
        summary: crash.summary(),
        backtrace,
    }
}
