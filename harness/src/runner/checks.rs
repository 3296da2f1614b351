//! The Then steps: expectations over the timeline of one device.
//!
//! Positive expectations wait for their event until their deadline, counted from
//! the last When step, and give up early when the device has reported a failure
//! that no retry can mend (a certificate verdict). Negative expectations wait
//! until the outcome is settled: the device reported its failure, or the
//! scenario's settle window passed. "Never" expectations are also checked again
//! when the scenario ends.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use regex::Regex;

use super::context::RunContext;
use super::steps::Step;
use super::world::{ScenarioWorld, StepResult};
use crate::logprofile::{LogProfile, SemanticEvent};
use crate::timeline::{Cursor, Direction, Event, EventKind, HandshakeOutcome};

/// How much of the timeline a failure shows.
const WINDOW_EVENTS: usize = 40;

/// A step that did not hold, with what decides it.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// What was expected.
    pub expectation: String,
    /// What was seen instead.
    pub found: String,
    /// The events that decided it.
    pub window: Vec<Event>,
    /// The harness, not the firmware, failed.
    pub infrastructure: bool,
}

impl StepFailure {
    pub(crate) fn infrastructure(message: &str) -> StepFailure {
        StepFailure {
            expectation: "the harness can run the step".into(),
            found: message.to_owned(),
            window: Vec::new(),
            infrastructure: true,
        }
    }

    fn expectation(expectation: String, found: String, window: Vec<Event>) -> StepFailure {
        StepFailure {
            expectation,
            found,
            window,
            infrastructure: false,
        }
    }

    /// The message reports show: expectation, finding, and the window.
    pub fn message(&self) -> String {
        let mut text = format!("expected {}\nbut {}", self.expectation, self.found);
        if !self.window.is_empty() {
            text.push_str("\ntimeline (the window that decided it):");
            for event in &self.window {
                text.push_str(&format!("\n  {}", describe(event)));
            }
        }
        text
    }
}

/// One event in a line, for failure messages and transcripts.
pub fn describe(event: &Event) -> String {
    let t = event.t_us as f64 / 1e6;
    let what = match &event.kind {
        EventKind::SerialLine { line } => format!("serial  {line}"),
        EventKind::Diagnostic { text } => format!("note    {text}"),
        other => {
            let json = serde_json::to_string(other).unwrap_or_default();
            format!("{:<7} {json}", format!("{:?}", event.source).to_lowercase())
        }
    };
    format!("[{t:>9.3}] {what}")
}

/// A check that holds until the scenario ends.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    NeverContains { text: String, from: Cursor },
    NeverConnects { from: Cursor },
    DoesNotReboot { from: Cursor, until: Instant },
}

fn of(device: IpAddr) -> impl Fn(&Event) -> bool {
    move |e| e.device == Some(device)
}

fn line_of(event: &Event) -> Option<&str> {
    match &event.kind {
        EventKind::SerialLine { line } => Some(line),
        _ => None,
    }
}

fn recognised(log: &LogProfile, event: &Event, wanted: &[SemanticEvent]) -> bool {
    line_of(event)
        .and_then(|l| log.recognise(l))
        .is_some_and(|r| wanted.contains(&r.event))
}

fn field(log: &LogProfile, event: &Event, name: &str) -> Option<String> {
    line_of(event)
        .and_then(|l| log.recognise(l))
        .and_then(|r| r.field(name).map(str::to_owned))
}

fn within_text(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// BearSSL's X.509 errors (32..=63): a retry against the same broker with the
/// same clock gets the same verdict.
fn certificate_verdict(log: &LogProfile, event: &Event) -> Option<i64> {
    if !recognised(log, event, &[SemanticEvent::TlsError]) {
        return None;
    }
    field(log, event, "code")
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|c| (32..=63).contains(c))
}

fn is_connack_ok(e: &Event) -> bool {
    matches!(e.kind, EventKind::MqttConnack { code: 0 })
}

/// The event that shows the board restarted after the harness reset it: a crash,
/// or a second boot. One boot can show as the ROM banner followed by the
/// firmware's boot line (or either alone: on a real board the banner is garbage
/// at 115200), so a boot line right after a banner is the same boot.
fn reboot_in<'a>(
    log: &LogProfile,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<&'a Event> {
    let mut boots = 0;
    let mut after_banner = false;
    for event in events {
        let Some(r) = line_of(event).and_then(|l| log.recognise(l)) else {
            continue;
        };
        match r.event {
            SemanticEvent::Crash => return Some(event),
            SemanticEvent::RomBanner => {
                boots += 1;
                after_banner = true;
            }
            SemanticEvent::Boot => {
                if !after_banner {
                    boots += 1;
                }
                after_banner = false;
            }
            _ => after_banner = false,
        }
        if boots > 1 {
            return Some(event);
        }
    }
    None
}

impl ScenarioWorld {
    /// This scenario's device's events from `from` on (none before a board is leased).
    pub(crate) fn device_events(&self, ctx: &RunContext, from: Cursor) -> Vec<Event> {
        let Some(device) = self.device() else {
            return Vec::new();
        };
        ctx.timeline
            .since(from)
            .into_iter()
            .filter(|e| e.device == Some(device))
            .collect()
    }

    fn window(&self, ctx: &RunContext, from: Cursor) -> Vec<Event> {
        let events = self.device_events(ctx, from);
        let skip = events.len().saturating_sub(WINDOW_EVENTS);
        events.into_iter().skip(skip).collect()
    }

    fn fail(
        &self,
        ctx: &RunContext,
        from: Cursor,
        expectation: String,
        found: String,
    ) -> StepResult {
        Err(StepFailure::expectation(
            expectation,
            found,
            self.window(ctx, from),
        ))
    }

    /// Waits until `deadline` for an event of this device matching `pred`.
    async fn seen(
        &self,
        ctx: &RunContext,
        from: Cursor,
        deadline: Instant,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let device = self.device()?;
        let mine = of(device);
        ctx.timeline
            .wait_for(
                from,
                deadline.saturating_duration_since(Instant::now()),
                |e| mine(e) && pred(e),
            )
            .await
    }

    /// Waits for `pred`, or for a certificate verdict the device will repeat
    /// forever; `Err` carries that verdict.
    async fn seen_unless_refused(
        &self,
        ctx: &RunContext,
        from: Cursor,
        deadline: Instant,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Option<Event>, i64> {
        let log = self.log();
        let found = self
            .seen(ctx, from, deadline, |e| {
                pred(e) || certificate_verdict(&log, e).is_some()
            })
            .await;
        match found {
            Some(e) if !pred(&e) => Err(certificate_verdict(&log, &e).unwrap_or_default()),
            other => Ok(other),
        }
    }

    /// When the outcome of this boot is settled: the device reported a failure,
    /// or the settle window (from the last When) passed.
    async fn settled(&self, ctx: &RunContext, from: Cursor, since: Instant) {
        let log = self.log();
        let deadline = since + ctx.settle;
        self.seen(ctx, from, deadline, |e| {
            recognised(
                &log,
                e,
                &[SemanticEvent::TlsError, SemanticEvent::MqttFailed],
            )
        })
        .await;
    }

    async fn positive(
        &self,
        ctx: &RunContext,
        expectation: String,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> StepResult {
        let (from, since) = self.act_point(ctx);
        let deadline = since + within;
        match self.seen_unless_refused(ctx, from, deadline, pred).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => self.fail(
                ctx,
                from,
                format!("{expectation} within {}", within_text(within)),
                "it did not happen".into(),
            ),
            Err(code) => self.fail(
                ctx,
                from,
                format!("{expectation} within {}", within_text(within)),
                format!("the device refused the broker's certificate (BearSSL {code}), a verdict no retry changes"),
            ),
        }
    }

    /// Waits until `deadline` for the board to restart after the reset at `reset`.
    async fn wait_for_reboot(&self, ctx: &RunContext, reset: Cursor, deadline: Instant) -> bool {
        let log = self.log();
        let mut next = reset;
        // Wake on every line that could be a restart; decide over all since the reset.
        while let Some(e) = self
            .seen(ctx, next, deadline, |e| {
                recognised(
                    &log,
                    e,
                    &[
                        SemanticEvent::Boot,
                        SemanticEvent::Crash,
                        SemanticEvent::RomBanner,
                    ],
                )
            })
            .await
        {
            next = e.cursor_after();
            if reboot_in(&log, &self.device_events(ctx, reset)).is_some() {
                return true;
            }
        }
        false
    }

    /// Checks the deferred expectations against everything seen so far.
    pub(crate) fn check_deferred(&self, ctx: &RunContext) -> StepResult {
        if self.device().is_none() {
            return Ok(());
        }
        let log = self.log();
        for check in &self.deferred {
            match check {
                Deferred::NeverContains { text, from } => {
                    if let Some(e) = self
                        .device_events(ctx, *from)
                        .into_iter()
                        .find(|e| line_of(e).is_some_and(|l| l.contains(text.as_str())))
                    {
                        return self.fail(
                            ctx,
                            *from,
                            format!("the serial output never to contain \"{text}\""),
                            format!("it printed: {}", line_of(&e).unwrap_or_default()),
                        );
                    }
                }
                Deferred::NeverConnects { from } => {
                    if self.device_events(ctx, *from).iter().any(is_connack_ok) {
                        return self.fail(
                            ctx,
                            *from,
                            "the device never to complete an MQTT connection".into(),
                            "the broker accepted its CONNECT (CONNACK 0)".into(),
                        );
                    }
                }
                Deferred::DoesNotReboot { from, .. } => {
                    let events = self.device_events(ctx, *from);
                    if let Some(e) = reboot_in(&log, &events) {
                        return self.fail(
                            ctx,
                            *from,
                            "the board not to reboot".into(),
                            format!("it did: {}", line_of(e).unwrap_or_default()),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The end of the scenario: "does not reboot" gets its observation time
    /// (ended early by a reboot), then every deferred check runs once more.
    pub(crate) async fn finish_deferred(&self, ctx: &RunContext) -> StepResult {
        for check in &self.deferred {
            if let Deferred::DoesNotReboot { from, until } = check {
                self.wait_for_reboot(ctx, *from, *until).await;
            }
        }
        self.check_deferred(ctx)
    }

    pub(crate) async fn then(&mut self, ctx: &RunContext, step: Step) -> StepResult {
        let device = self.require_device()?;
        let log = self.log();
        let (from, since) = self.act_point(ctx);
        match step {
            Step::SerialContains { text, within } => {
                let t = text.clone();
                self.positive(
                    ctx,
                    format!("the serial output to contain \"{text}\""),
                    within,
                    move |e| line_of(e).is_some_and(|l| l.contains(t.as_str())),
                )
                .await
            }
            Step::SerialMatches { pattern, within } => {
                let re = Regex::new(&pattern)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
                self.positive(
                    ctx,
                    format!("the serial output to match /{pattern}/"),
                    within,
                    move |e| line_of(e).is_some_and(|l| re.is_match(l)),
                )
                .await
            }
            Step::SerialNeverContains(text) => {
                let start = self.start.unwrap_or(from);
                self.deferred
                    .push(Deferred::NeverContains { text, from: start });
                self.check_deferred(ctx)
            }
            Step::TlsFailureCode(code) => self.tls_failure(ctx, &log, code).await,
            Step::MqttState { state, within } => self.mqtt_state(ctx, &log, state, within).await,
            Step::DoesNotReboot => {
                self.deferred.push(Deferred::DoesNotReboot {
                    from: self.reset_at.unwrap_or(from),
                    until: Instant::now() + ctx.quiet,
                });
                self.check_deferred(ctx)
            }
            Step::RebootsWithin(within) => {
                let reset = self.reset_at.unwrap_or(from);
                let deadline = since + within;
                let rebooted = self.wait_for_reboot(ctx, reset, deadline).await;
                match rebooted {
                    true => Ok(()),
                    false => self.fail(
                        ctx,
                        from,
                        format!("the board to reboot within {}", within_text(within)),
                        "it kept running".into(),
                    ),
                }
            }
            Step::HandshakeSucceeds(within) => {
                self.positive(ctx, "the TLS handshake to succeed".into(), within, |e| {
                    matches!(
                        &e.kind,
                        EventKind::TlsHandshake {
                            outcome: HandshakeOutcome::Completed { .. },
                            ..
                        }
                    )
                })
                .await
            }
            Step::HandshakeDoesNotComplete => {
                let completed = |e: &Event| {
                    matches!(
                        &e.kind,
                        EventKind::TlsHandshake {
                            outcome: HandshakeOutcome::Completed { .. },
                            ..
                        }
                    )
                };
                let ended = |e: &Event| matches!(&e.kind, EventKind::TlsHandshake { .. });
                let reported = |e: &Event| {
                    recognised(
                        &log,
                        e,
                        &[SemanticEvent::TlsError, SemanticEvent::MqttFailed],
                    )
                };
                let deadline = since + ctx.settle;
                let decided = self
                    .seen(ctx, from, deadline, |e| ended(e) || reported(e))
                    .await;
                match decided {
                    Some(e) if completed(&e) => self.fail(
                        ctx,
                        from,
                        "the TLS handshake not to complete".into(),
                        "the device completed it".into(),
                    ),
                    _ => Ok(()),
                }
            }
            Step::SentSni(host) => {
                let hello = self.client_hello(ctx, from, since).await?;
                if hello.sni.as_deref() == Some(host.as_str()) {
                    Ok(())
                } else {
                    self.fail(
                        ctx,
                        from,
                        format!("the device to send SNI \"{host}\""),
                        format!("its ClientHello carried {}", show_sni(hello.sni.as_deref())),
                    )
                }
            }
            Step::SentNoSni => {
                let hello = self.client_hello(ctx, from, since).await?;
                match hello.sni {
                    None => Ok(()),
                    Some(sni) => self.fail(
                        ctx,
                        from,
                        "the device to send no SNI".into(),
                        format!("its ClientHello carried SNI \"{sni}\""),
                    ),
                }
            }
            Step::OfferedMfln(bytes) => {
                let hello = self.client_hello(ctx, from, since).await?;
                if hello.max_fragment_length.map(u32::from) == Some(bytes) {
                    Ok(())
                } else {
                    self.fail(
                        ctx,
                        from,
                        format!("the device to offer a max fragment length of {bytes} bytes"),
                        match hello.max_fragment_length {
                            Some(n) => format!("it offered {n} bytes"),
                            None => "its ClientHello had no max_fragment_length extension".into(),
                        },
                    )
                }
            }
            Step::ConnectsWithin(within) => {
                self.positive(
                    ctx,
                    "the device to connect to the broker (MQTT CONNECT)".into(),
                    within,
                    |e| matches!(e.kind, EventKind::MqttConnect { .. }),
                )
                .await
            }
            Step::NeverConnects => {
                self.settled(ctx, from, since).await;
                self.deferred.push(Deferred::NeverConnects { from });
                self.check_deferred(ctx)
            }
            Step::PublishesTo { topic, within } => {
                let t = topic.clone();
                self.positive(ctx, format!("the device to publish to \"{topic}\""), within, move |e| {
                    matches!(&e.kind, EventKind::MqttPublish { direction: Direction::FromDevice, topic, .. } if *topic == t)
                })
                .await
            }
            Step::PublishesMatching {
                pattern,
                topic,
                within,
            } => {
                let re = Regex::new(&pattern)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
                let t = topic.clone();
                self.positive(
                    ctx,
                    format!("the device to publish a message matching /{pattern}/ to \"{topic}\""),
                    within,
                    move |e| {
                        matches!(&e.kind, EventKind::MqttPublish { direction: Direction::FromDevice, topic, payload, .. } if *topic == t && re.is_match(payload))
                    },
                )
                .await
            }
            Step::PublishesAtMost { count, per } => {
                self.at_most(ctx, device, count, per, "messages", |e| {
                    matches!(
                        &e.kind,
                        EventKind::MqttPublish {
                            direction: Direction::FromDevice,
                            ..
                        }
                    )
                })
                .await
            }
            Step::OpensAtMost { count, per } => {
                self.at_most(ctx, device, count, per, "connections", |e| {
                    matches!(&e.kind, EventKind::TlsAccepted { .. })
                })
                .await
            }
            Step::SubscribesTo { topic, within } => {
                let t = topic.clone();
                self.positive(ctx, format!("the device to subscribe to \"{topic}\""), within, move |e| {
                    matches!(&e.kind, EventKind::MqttSubscribe { topics } if topics.contains(&t))
                })
                .await
            }
            Step::AskedForTime(within) => {
                self.positive(
                    ctx,
                    "the device to ask for the time (SNTP)".into(),
                    within,
                    |e| matches!(&e.kind, EventKind::NtpRequest { .. }),
                )
                .await
            }
            Step::TranscriptMatchesSnapshot => super::snapshot::check(self, ctx).await,
            other => Err(StepFailure::infrastructure(&format!(
                "`{other:?}` is not an expectation"
            ))),
        }
    }

    async fn client_hello(
        &self,
        ctx: &RunContext,
        from: Cursor,
        since: Instant,
    ) -> Result<crate::timeline::ClientHello, StepFailure> {
        let found = self
            .seen(ctx, from, since + ctx.settle, |e| {
                matches!(e.kind, EventKind::TlsClientHello { .. })
            })
            .await;
        match found.map(|e| e.kind) {
            Some(EventKind::TlsClientHello { hello, .. }) => Ok(hello),
            _ => Err(StepFailure::expectation(
                "a ClientHello from the device".into(),
                format!(
                    "none reached the broker within the settle window ({})",
                    within_text(ctx.settle)
                ),
                self.window(ctx, from),
            )),
        }
    }

    async fn tls_failure(&self, ctx: &RunContext, log: &LogProfile, code: i64) -> StepResult {
        let (from, since) = self.act_point(ctx);
        if !log.reports(SemanticEvent::TlsError) {
            return self.fail(
                ctx,
                from,
                format!("the device to report a TLS failure with code {code}"),
                format!(
                    "its log profile `{}` has no pattern for TLS failures: this firmware never says why TLS failed",
                    log.name()
                ),
            );
        }
        let decided = self
            .seen(ctx, from, since + ctx.settle, |e| {
                recognised(
                    log,
                    e,
                    &[
                        SemanticEvent::TlsError,
                        SemanticEvent::MqttConnected,
                        SemanticEvent::TlsOk,
                    ],
                )
            })
            .await;
        let expectation = format!("the device to report a TLS failure with code {code}");
        match decided {
            Some(e) if recognised(log, &e, &[SemanticEvent::TlsError]) => {
                let reported = field(log, &e, "code").unwrap_or_default();
                if reported.parse::<i64>().ok() == Some(code) {
                    Ok(())
                } else {
                    let text = field(log, &e, "text").unwrap_or_default();
                    self.fail(
                        ctx,
                        from,
                        expectation,
                        format!("it reported code {reported} ({text})"),
                    )
                }
            }
            Some(_) => self.fail(
                ctx,
                from,
                expectation,
                "its TLS connection succeeded".into(),
            ),
            None => self.fail(
                ctx,
                from,
                expectation,
                format!(
                    "it reported no TLS failure within the settle window ({})",
                    within_text(ctx.settle)
                ),
            ),
        }
    }

    async fn mqtt_state(
        &self,
        ctx: &RunContext,
        log: &LogProfile,
        state: i64,
        within: Option<Duration>,
    ) -> StepResult {
        let (from, since) = self.act_point(ctx);
        let expectation = format!("the device to report MQTT state {state}");
        let wanted = if state == 0 {
            SemanticEvent::MqttConnected
        } else {
            SemanticEvent::MqttFailed
        };
        if !log.reports(wanted) {
            return self.fail(
                ctx,
                from,
                expectation,
                format!(
                    "its log profile `{}` has no pattern for `{wanted}`",
                    log.name()
                ),
            );
        }
        let deadline = since + within.unwrap_or(ctx.settle);
        let decided = self
            .seen(ctx, from, deadline, |e| {
                recognised(
                    log,
                    e,
                    &[SemanticEvent::MqttFailed, SemanticEvent::MqttConnected],
                )
            })
            .await;
        match decided {
            Some(e) if recognised(log, &e, &[SemanticEvent::MqttConnected]) => {
                if state == 0 {
                    Ok(())
                } else {
                    self.fail(ctx, from, expectation, "it connected (state 0)".into())
                }
            }
            Some(e) => {
                let rc = field(log, &e, "rc").unwrap_or_default();
                if rc.parse::<i64>().ok() == Some(state) {
                    Ok(())
                } else {
                    self.fail(ctx, from, expectation, format!("it reported rc={rc}"))
                }
            }
            None => self.fail(
                ctx,
                from,
                expectation,
                format!(
                    "it reported no MQTT state within {}",
                    within_text(deadline.saturating_duration_since(since))
                ),
            ),
        }
    }

    /// No more than `count` matching events in any window of `per`, from the last
    /// When step until at least `per` after it.
    async fn at_most(
        &self,
        ctx: &RunContext,
        device: IpAddr,
        count: u32,
        per: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> StepResult {
        let (from, since) = self.act_point(ctx);
        let expectation = format!(
            "the device to make at most {count} {what} per {}",
            within_text(per)
        );
        let per_us = per.as_micros() as u64;
        let mine = of(device);
        let violation = |events: &[Event]| -> Option<String> {
            let times: Vec<u64> = events
                .iter()
                .filter(|e| mine(e) && pred(e))
                .map(|e| e.t_us)
                .collect();
            let n = count as usize;
            times
                .windows(n + 1)
                .find(|w| w[n] - w[0] < per_us)
                .map(|w| {
                    format!(
                        "it made {} {what} in {:.2} s",
                        n + 1,
                        (w[n] - w[0]) as f64 / 1e6
                    )
                })
        };
        let deadline = since + per;
        let mut next = from;
        loop {
            let events = ctx.timeline.since(from);
            if let Some(found) = violation(&events) {
                return self.fail(ctx, from, expectation, found);
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            // Wake on the next matching event, or at the end of the observation.
            match self.seen(ctx, next, deadline, |e| pred(e)).await {
                Some(e) => next = e.cursor_after(),
                None => continue,
            }
        }
    }
}

fn show_sni(sni: Option<&str>) -> String {
    match sni {
        Some(s) => format!("SNI \"{s}\""),
        None => "no SNI".into(),
    }
}
