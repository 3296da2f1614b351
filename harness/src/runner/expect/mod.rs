//! What each Then step means, as pure functions of the device's events.
//!
//! An [`Expectation`] is made from a step, the moment the step was reached and
//! the moment of the last When (where `within` counts from). Given the device's
//! events and the time now, [`Expectation::judge`] says pass, fail (with the
//! window of the timeline that decided it), inconclusive (the evidence a verdict
//! needs never came), or "not yet" with the instant to look again. Nothing here
//! waits or reads a clock: the scenario drives it, and the unit tests feed it
//! synthetic timelines.
//!
//! The rules (STEPS.md, "What a verdict means"):
//! - a negative expectation about the network is only judged once the device
//!   visibly tried to reach the broker, else it is inconclusive;
//! - "never" covers the firmware's next attempt after its first failure (or the
//!   settle window, whichever ends first), and keeps holding until the scenario
//!   ends ([`Expectation::recheck`]);
//! - "at most N per D" watches from the moment its step is reached;
//! - a crash or a reboot the harness did not cause fails the scenario
//!   ([`crash_watch`]) unless it expects a reboot.
//!
//! ```
//! use std::time::Duration;
//! use hil::runner::expect::{Expectation, Judgement, Mark, Scene, Verdict};
//! use hil::runner::steps::parse;
//!
//! let scene = Scene::new(hil::logprofile::LogProfile::reference(), Duration::from_secs(10));
//! let step = parse("the device never completes an MQTT connection")?;
//! let expectation = Expectation::for_step(&step, Mark::default(), Mark::default()).expect("a Then step");
//! // A device that never did anything: after the settle window, inconclusive.
//! let judgement = expectation.judge(&scene, &[], 10_000_000);
//! assert!(matches!(judgement, Judgement::Decided(Verdict::Inconclusive(_))));
//! # Ok::<(), hil::runner::steps::StepError>(())
//! ```

mod attempts;
mod observed;
mod reboots;

pub use self::reboots::CrashWatch;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use self::attempts::Attempts;
use self::observed::{show, since};
pub use self::observed::{Mark, Observed};
use super::steps::Step;
use crate::crash::Crash;
use crate::logprofile::{LogProfile, SemanticEvent};
use crate::timeline::EventKind;

/// What every expectation of a scenario shares besides the events.
#[derive(Debug, Clone)]
pub struct Scene {
    /// How the device's serial lines are read.
    pub log: Arc<LogProfile>,
    /// How long a negative expectation waits for its outcome at most.
    pub settle: Duration,
    /// How long `the board does not reboot` watches at least.
    pub quiet: Duration,
    /// Names the device reaches its broker by: a DNS query for one is an attempt.
    pub broker_names: Vec<String>,
    /// The lab serves the board's network: a board that never asked for a DHCP
    /// lease never joined it, and a network expectation says so.
    pub joins_by_dhcp: bool,
}

impl Scene {
    /// A scene reading lines through `log`, with the lab's broker name and a
    /// two-second quiet window.
    pub fn new(log: LogProfile, settle: Duration) -> Scene {
        Scene {
            log: Arc::new(log),
            settle,
            quiet: Duration::from_secs(2),
            broker_names: vec![crate::pki::BROKER_HOST.to_owned()],
            joins_by_dhcp: false,
        }
    }

    pub(crate) fn is_broker_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.broker_names
            .iter()
            .any(|b| b.trim_end_matches('.').eq_ignore_ascii_case(name))
    }
}

/// What the timeline shows against an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was seen, in words (`the broker accepted its CONNECT (CONNACK 0)`).
    pub found: String,
    /// The window that decided it: the device's events from this position...
    pub from: u64,
    /// ...to this one (the deciding event, or the last one seen).
    pub to: u64,
    /// The crash, when a crash decided it.
    pub crash: Option<Crash>,
}

/// The outcome of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The expectation holds.
    Pass,
    /// The timeline contradicts it.
    Fail(Finding),
    /// The evidence the verdict needs never came (the device never tried);
    /// counts as a failure and says why.
    Inconclusive(Finding),
}

/// A verdict, or when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Settled.
    Decided(Verdict),
    /// Not yet: look again at the next event of the device, or at this instant
    /// (timeline microseconds) at the latest.
    Pending {
        /// The instant.
        until_us: u64,
    },
}

/// What a positive expectation needs of the device's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// A completed handshake.
    Handshake,
    /// A connection the broker accepted.
    Connection,
}

/// Which events `at most N per D` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Publishes,
    Connections,
}

#[derive(Debug, Clone)]
enum Check {
    SerialContains {
        text: String,
        within: Duration,
    },
    SerialMatches {
        regex: Regex,
        within: Duration,
    },
    SerialNeverContains {
        text: String,
    },
    TlsFailureCode {
        code: i64,
    },
    MqttState {
        state: i64,
        within: Option<Duration>,
    },
    DoesNotReboot,
    RebootsWithin {
        within: Duration,
    },
    HandshakeSucceeds {
        within: Duration,
    },
    HandshakeDoesNotComplete,
    StartsHandshake {
        within: Duration,
    },
    SentSni {
        host: Option<String>,
    },
    OfferedMfln {
        bytes: u32,
    },
    ConnectsWithin {
        within: Duration,
    },
    SendsConnect {
        within: Duration,
    },
    NeverConnects,
    PublishesTo {
        topic: String,
        matching: Option<Regex>,
        within: Duration,
    },
    AtMost {
        what: Counted,
        count: u32,
        per: Duration,
    },
    SubscribesTo {
        topic: String,
        within: Duration,
    },
    /// Every publish on the topic carries these flags (`None`: not judged).
    PublishFlags {
        topic: String,
        retained: Option<bool>,
        qos: Option<u8>,
    },
    AskedForTime {
        within: Duration,
    },
    LooksUp {
        host: String,
        within: Duration,
    },
}

/// One Then step, ready to be judged.
#[derive(Debug, Clone)]
pub struct Expectation {
    check: Check,
    description: String,
    reached: Mark,
    act: Mark,
}

/// The crash watch over `events` at `now_us`: the first reboot after the first
/// harness reset whose report starts before the sequence number `before` (from
/// there on a scenario expects its board to reboot), judged once its dump is
/// whole.
pub fn crash_watch(events: &[Observed], now_us: u64, before: Option<u64>) -> CrashWatch {
    reboots::first_crash(events, now_us, before)
}

fn pass() -> Judgement {
    Judgement::Decided(Verdict::Pass)
}

fn fail(found: impl Into<String>, from: u64, to: u64) -> Judgement {
    Judgement::Decided(Verdict::Fail(Finding {
        found: found.into(),
        from,
        to,
        crash: None,
    }))
}

fn inconclusive(found: impl Into<String>, from: u64, to: u64) -> Judgement {
    Judgement::Decided(Verdict::Inconclusive(Finding {
        found: found.into(),
        from,
        to,
        crash: None,
    }))
}

fn last_seq(events: &[Observed], mark: Mark) -> u64 {
    events.last().map_or(mark.seq, Observed::seq)
}

impl Expectation {
    /// The expectation of a Then step; `None` for Given and When steps, and for
    /// the snapshot step (a comparison with a stored file, not a judgement of
    /// events). `reached` is where the step was reached, `act` where the last
    /// When acted.
    pub fn for_step(step: &Step, reached: Mark, act: Mark) -> Option<Expectation> {
        let regex = |p: &str| Regex::new(p).ok();
        let (check, description) = match step {
            Step::SerialContains { text, within } => (
                Check::SerialContains {
                    text: text.clone(),
                    within: *within,
                },
                format!(
                    "the serial output to contain \"{text}\" within {}",
                    show(*within)
                ),
            ),
            Step::SerialMatches { pattern, within } => (
                Check::SerialMatches {
                    regex: regex(pattern)?,
                    within: *within,
                },
                format!(
                    "the serial output to match /{pattern}/ within {}",
                    show(*within)
                ),
            ),
            Step::SerialNeverContains(text) => (
                Check::SerialNeverContains { text: text.clone() },
                format!("the serial output never to contain \"{text}\""),
            ),
            Step::TlsFailureCode(code) => (
                Check::TlsFailureCode { code: *code },
                format!("the device to report a TLS failure with code {code}, on every attempt"),
            ),
            Step::MqttState { state, within } => (
                Check::MqttState {
                    state: *state,
                    within: *within,
                },
                format!("the device to report MQTT state {state}"),
            ),
            Step::DoesNotReboot => (Check::DoesNotReboot, "the board not to reboot".into()),
            Step::RebootsWithin(within) => (
                Check::RebootsWithin { within: *within },
                format!("the board to reboot within {}", show(*within)),
            ),
            Step::HandshakeSucceeds(within) => (
                Check::HandshakeSucceeds { within: *within },
                format!("the TLS handshake to succeed within {}", show(*within)),
            ),
            Step::HandshakeDoesNotComplete => (
                Check::HandshakeDoesNotComplete,
                "the TLS handshake never to complete".into(),
            ),
            Step::StartsHandshake(within) => (
                Check::StartsHandshake { within: *within },
                format!(
                    "the device to start a TLS handshake within {}",
                    show(*within)
                ),
            ),
            Step::SentSni(host) => (
                Check::SentSni {
                    host: Some(host.clone()),
                },
                format!("the device to send SNI \"{host}\""),
            ),
            Step::SentNoSni => (
                Check::SentSni { host: None },
                "the device to send no SNI".into(),
            ),
            Step::OfferedMfln(bytes) => (
                Check::OfferedMfln { bytes: *bytes },
                format!("the device to offer a max fragment length of {bytes} bytes"),
            ),
            Step::ConnectsWithin(within) => (
                Check::ConnectsWithin { within: *within },
                format!(
                    "the device to connect to the broker (CONNACK 0) within {}",
                    show(*within)
                ),
            ),
            Step::SendsConnect(within) => (
                Check::SendsConnect { within: *within },
                format!(
                    "the device to send an MQTT CONNECT within {}",
                    show(*within)
                ),
            ),
            Step::NeverConnects => (
                Check::NeverConnects,
                "the device never to complete an MQTT connection".into(),
            ),
            Step::PublishesTo { topic, within } => (
                Check::PublishesTo {
                    topic: topic.clone(),
                    matching: None,
                    within: *within,
                },
                format!(
                    "the device to publish to \"{topic}\" within {}",
                    show(*within)
                ),
            ),
            Step::PublishesMatching {
                pattern,
                topic,
                within,
            } => (
                Check::PublishesTo {
                    topic: topic.clone(),
                    matching: Some(regex(pattern)?),
                    within: *within,
                },
                format!(
                    "the device to publish a message matching /{pattern}/ to \"{topic}\" within {}",
                    show(*within)
                ),
            ),
            Step::PublishesAtMost { count, per } => (
                Check::AtMost {
                    what: Counted::Publishes,
                    count: *count,
                    per: *per,
                },
                format!(
                    "the device to publish at most {count} {} per {}",
                    if *count == 1 { "message" } else { "messages" },
                    show(*per)
                ),
            ),
            Step::OpensAtMost { count, per } => (
                Check::AtMost {
                    what: Counted::Connections,
                    count: *count,
                    per: *per,
                },
                format!(
                    "the device to open at most {count} {} per {}",
                    if *count == 1 {
                        "connection"
                    } else {
                        "connections"
                    },
                    show(*per)
                ),
            ),
            Step::SubscribesTo { topic, within } => (
                Check::SubscribesTo {
                    topic: topic.clone(),
                    within: *within,
                },
                format!(
                    "the device to subscribe to \"{topic}\" within {}",
                    show(*within)
                ),
            ),
            Step::PublishesRetained { topic, retained } => (
                Check::PublishFlags {
                    topic: topic.clone(),
                    retained: Some(*retained),
                    qos: None,
                },
                format!(
                    "every publish of the device to \"{topic}\" to be {}",
                    if *retained {
                        "retained"
                    } else {
                        "not retained"
                    }
                ),
            ),
            Step::PublishesWithQos { topic, qos } => (
                Check::PublishFlags {
                    topic: topic.clone(),
                    retained: None,
                    qos: Some(qos.level()),
                },
                format!(
                    "every publish of the device to \"{topic}\" to use QoS {}",
                    qos.level()
                ),
            ),
            Step::AskedForTime(within) => (
                Check::AskedForTime { within: *within },
                format!(
                    "the device to ask for the time (SNTP) within {}",
                    show(*within)
                ),
            ),
            Step::LooksUp { host, within } => (
                Check::LooksUp {
                    host: host.clone(),
                    within: *within,
                },
                format!("the device to look up \"{host}\" within {}", show(*within)),
            ),
            _ => return None,
        };
        Some(Expectation {
            check,
            description,
            reached,
            act,
        })
    }

    /// What is expected, in words (`the TLS handshake never to complete`).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Whether the expectation keeps holding after its step, until the scenario
    /// ends: then [`Expectation::recheck`] is asked again on every new event.
    pub fn holds(&self) -> bool {
        matches!(
            self.check,
            Check::SerialNeverContains { .. }
                | Check::TlsFailureCode { .. }
                | Check::DoesNotReboot
                | Check::HandshakeDoesNotComplete
                | Check::NeverConnects
                | Check::AtMost { .. }
                | Check::PublishFlags { .. }
        )
    }

    /// Whether the scenario expects the board to reboot (then a reboot is not a crash).
    pub fn expects_reboot(&self) -> bool {
        matches!(self.check, Check::RebootsWithin { .. })
    }

    /// The instant the scenario may end at the earliest, for an expectation that
    /// needs time to be watched (`the board does not reboot`, `at most N per D`).
    pub fn watch_until(&self, scene: &Scene) -> Option<u64> {
        match self.check {
            Check::DoesNotReboot => Some(self.reached.plus(scene.quiet)),
            Check::AtMost { per, .. } => Some(self.reached.plus(per)),
            _ => None,
        }
    }

    /// Judges the step. `events` are the device's events since the scenario
    /// started, in order; `now_us` is the timeline's clock.
    pub fn judge(&self, scene: &Scene, events: &[Observed], now_us: u64) -> Judgement {
        let judgement = self.judge_events(scene, events, now_us);
        // On a network the lab serves, a board that never asked for a lease
        // never reached anything: a network expectation cannot be judged.
        let failed = matches!(
            judgement,
            Judgement::Decided(Verdict::Fail(_) | Verdict::Inconclusive(_))
        );
        if failed
            && scene.joins_by_dhcp
            && self.concerns_network()
            && now_us >= self.act.plus(scene.settle)
            && !since(events, self.act)
                .iter()
                .any(|o| matches!(o.event.kind, EventKind::DhcpLease { .. }))
        {
            return inconclusive(
                format!(
                    "the board never joined the lab's network: no DHCP request from it within the settle window ({})",
                    show(scene.settle)
                ),
                self.act.seq,
                last_seq(events, self.act),
            );
        }
        judgement
    }

    /// Whether the step is about the device's traffic (not its serial output).
    fn concerns_network(&self) -> bool {
        !matches!(
            self.check,
            Check::SerialContains { .. }
                | Check::SerialMatches { .. }
                | Check::SerialNeverContains { .. }
                | Check::DoesNotReboot
                | Check::RebootsWithin { .. }
                | Check::AtMost { .. }
        )
    }

    fn judge_events(&self, scene: &Scene, events: &[Observed], now_us: u64) -> Judgement {
        let after_act = since(events, self.act);
        let act = self.act;
        let deadline = |within: Duration| act.plus(within);
        match &self.check {
            Check::SerialContains { text, within } => self.positive(
                after_act,
                now_us,
                deadline(*within),
                |o| o.line().is_some_and(|l| l.contains(text.as_str())),
                "no line contained it",
            ),
            Check::SerialMatches { regex, within } => self.positive(
                after_act,
                now_us,
                deadline(*within),
                |o| o.line().is_some_and(|l| regex.is_match(l)),
                "no line matched",
            ),
            Check::SerialNeverContains { .. } => self.violation(scene, events, now_us).unwrap_or_else(pass),
            Check::TlsFailureCode { code } => self.tls_failure(scene, after_act, now_us, *code),
            Check::MqttState { state, within } => {
                self.mqtt_state(scene, after_act, now_us, *state, within.unwrap_or(scene.settle))
            }
            Check::DoesNotReboot => self.violation(scene, events, now_us).unwrap_or_else(pass),
            Check::RebootsWithin { within } => {
                // The reboot is judged on the whole scenario: its crash report
                // is read from the harness's reset on, and counts from the act.
                let reboots = reboots::scan(events, now_us);
                let rebooted = reboots
                    .seen
                    .iter()
                    .any(|r| r.seq >= act.seq && r.t_us <= deadline(*within))
                    || reboots.arriving.is_some_and(|(seq, _)| seq >= act.seq);
                if rebooted {
                    pass()
                } else if now_us >= deadline(*within) {
                    fail("it kept running", act.seq, last_seq(events, act))
                } else {
                    Judgement::Pending {
                        until_us: deadline(*within),
                    }
                }
            }
            Check::HandshakeSucceeds { within } => self.positive_unless_refused(
                scene,
                after_act,
                now_us,
                deadline(*within),
                Observed::handshake_completed,
                Needs::Handshake,
            ),
            Check::ConnectsWithin { within } => self.positive_unless_refused(
                scene,
                after_act,
                now_us,
                deadline(*within),
                |o| o.connack() == Some(0),
                Needs::Connection,
            ),
            Check::StartsHandshake { within } => self.positive(
                after_act,
                now_us,
                deadline(*within),
                |o| matches!(o.event.kind, EventKind::TlsClientHello { .. }),
                "no ClientHello reached the broker",
            ),
            Check::SendsConnect { within } => self.positive_unless_refused(
                scene,
                after_act,
                now_us,
                deadline(*within),
                |o| matches!(o.event.kind, EventKind::MqttConnect { .. }),
                Needs::Handshake,
            ),
            Check::HandshakeDoesNotComplete | Check::NeverConnects => {
                match self.violation(scene, after_act, now_us) {
                    Some(failed) => failed,
                    None => self.settled(scene, after_act, now_us),
                }
            }
            Check::SentSni { host } => self.client_hello(scene, after_act, now_us, |hello| {
                match (host, hello.sni.as_deref()) {
                    (Some(want), Some(got)) if want.eq_ignore_ascii_case(got) => None,
                    (None, None) => None,
                    (_, Some(got)) => Some(format!("its ClientHello carried SNI \"{got}\"")),
                    (_, None) => Some("its ClientHello carried no SNI".into()),
                }
            }),
            Check::OfferedMfln { bytes } => self.client_hello(scene, after_act, now_us, |hello| {
                match hello.max_fragment_length {
                    Some(n) if u32::from(n) == *bytes => None,
                    Some(n) => Some(format!("it offered {n} bytes")),
                    None => Some("its ClientHello had no max_fragment_length extension".into()),
                }
            }),
            Check::PublishesTo { topic, matching, within } => self.positive_unless_refused(
                scene,
                after_act,
                now_us,
                deadline(*within),
                |o| {
                    o.publish_from_device().is_some_and(|(t, payload)| {
                        t == topic && matching.as_ref().is_none_or(|r| r.is_match(payload))
                    })
                },
                Needs::Connection,
            ),
            Check::SubscribesTo { topic, within } => self.positive_unless_refused(
                scene,
                after_act,
                now_us,
                deadline(*within),
                |o| matches!(&o.event.kind, EventKind::MqttSubscribe { topics } if topics.contains(topic)),
                Needs::Connection,
            ),
            Check::AskedForTime { within } => self.positive(
                after_act,
                now_us,
                deadline(*within),
                |o| matches!(o.event.kind, EventKind::NtpRequest { .. }),
                "no NTP request reached the lab",
            ),
            Check::LooksUp { host, within } => self.positive(
                after_act,
                now_us,
                deadline(*within),
                |o| matches!(&o.event.kind, EventKind::DnsQuery { name, .. }
                    if name.trim_end_matches('.').eq_ignore_ascii_case(host.trim_end_matches('.'))),
                "no DNS query for it reached the lab",
            ),
            Check::PublishFlags { topic, .. } => {
                if let Some(broken) = self.violation(scene, events, now_us) {
                    return broken;
                }
                if events
                    .iter()
                    .any(|o| o.publish_flags().is_some_and(|(t, ..)| t == topic))
                {
                    return pass();
                }
                let settle_at = act.plus(scene.settle);
                if now_us < settle_at {
                    return Judgement::Pending {
                        until_us: settle_at,
                    };
                }
                inconclusive(
                    format!(
                        "the device published nothing to \"{topic}\" within the settle window ({}): there was no publish to judge",
                        show(scene.settle)
                    ),
                    act.seq,
                    last_seq(events, act),
                )
            }
            Check::AtMost { per, .. } => match self.violation(scene, events, now_us) {
                Some(failed) => failed,
                None if now_us >= self.reached.plus(*per) => pass(),
                None => Judgement::Pending { until_us: self.reached.plus(*per) },
            },
        }
    }

    /// After the step passed: whether the expectation still holds. `Some` is the
    /// failure that breaks it.
    pub fn recheck(&self, scene: &Scene, events: &[Observed], now_us: u64) -> Option<Verdict> {
        if !self.holds() {
            return None;
        }
        let scope = match self.check {
            Check::SerialNeverContains { .. }
            | Check::DoesNotReboot
            | Check::AtMost { .. }
            | Check::PublishFlags { .. } => events,
            _ => since(events, self.act),
        };
        match self.violation(scene, scope, now_us)? {
            Judgement::Decided(verdict @ Verdict::Fail(_)) => Some(verdict),
            _ => None,
        }
    }

    /// At the scenario's end, for an expectation that held: inconclusive when
    /// it never saw an event of the kind it judges, since nothing seen is not a
    /// pass (a silent console never printed the forbidden text, a dead board
    /// never rebooted, a device that never published never published too often).
    pub fn conclude(&self, events: &[Observed]) -> Option<Verdict> {
        let after_reset = events
            .iter()
            .position(Observed::is_harness_reset)
            .map_or(&events[..0], |i| &events[i + 1..]);
        let (seen, what) = match &self.check {
            Check::SerialNeverContains { .. } => (
                events.iter().any(|o| o.line().is_some_and(|l| !l.trim().is_empty())),
                "the device printed nothing on its console: a silent console never prints anything",
            ),
            Check::DoesNotReboot => (
                after_reset.iter().any(|o| o.line().is_some_and(|l| !l.trim().is_empty())),
                "the board printed nothing after its reset: a dead console shows no reboot either",
            ),
            Check::AtMost { count: 0, .. } => (
                after_reset.iter().any(|o| o.line().is_some() || o.event.source != crate::timeline::Source::Harness),
                "the board showed no sign of life after its reset",
            ),
            Check::AtMost {
                what: Counted::Publishes,
                ..
            } => (
                events.iter().any(|o| o.publish_from_device().is_some()),
                "the device never published anything: a device that never publishes never publishes too often",
            ),
            Check::AtMost {
                what: Counted::Connections,
                ..
            } => (
                events
                    .iter()
                    .any(|o| matches!(o.event.kind, EventKind::TlsAccepted { .. })),
                "the device never opened a connection to the broker",
            ),
            _ => return None,
        };
        if seen {
            return None;
        }
        let last = last_seq(events, self.reached);
        Some(Verdict::Inconclusive(Finding {
            found: what.to_owned(),
            from: self.reached.seq,
            to: last,
            crash: None,
        }))
    }

    /// The event that contradicts a holding expectation, as a failure.
    fn violation(&self, scene: &Scene, events: &[Observed], now_us: u64) -> Option<Judgement> {
        let from = events.first().map_or(self.act.seq, Observed::seq);
        match &self.check {
            Check::SerialNeverContains { text } => {
                let o = events
                    .iter()
                    .find(|o| o.line().is_some_and(|l| l.contains(text.as_str())))?;
                Some(fail(
                    format!("it printed: {}", o.line().unwrap_or_default()),
                    from,
                    o.seq(),
                ))
            }
            Check::DoesNotReboot => {
                // A dump still arriving is judged when whole (the recheck runs
                // again on every new line, and once more at the scenario's end).
                let CrashWatch::Crashed(seq, crash) = crash_watch(events, now_us, None) else {
                    return None;
                };
                Some(Judgement::Decided(Verdict::Fail(Finding {
                    found: format!("it did: {}", crash.summary()),
                    from,
                    to: seq,
                    crash: Some(crash),
                })))
            }
            Check::HandshakeDoesNotComplete => {
                let o = events.iter().find(|o| o.handshake_completed())?;
                Some(fail(
                    self.after_failure(
                        scene,
                        events,
                        o.seq(),
                        "the device completed a TLS handshake",
                    ),
                    from,
                    o.seq(),
                ))
            }
            Check::NeverConnects => {
                let o = events.iter().find(|o| o.connack() == Some(0))?;
                Some(fail(
                    self.after_failure(
                        scene,
                        events,
                        o.seq(),
                        "the broker accepted its CONNECT (CONNACK 0)",
                    ),
                    from,
                    o.seq(),
                ))
            }
            Check::TlsFailureCode { code } => {
                let report = events
                    .iter()
                    .position(|o| o.said(SemanticEvent::TlsError))?;
                let o = events[report..].iter().find(|o| o.tls_success())?;
                Some(fail(
                    format!(
                        "after reporting code {} it connected on a later attempt: {}",
                        events[report].number("code").unwrap_or(*code),
                        describe_success(o)
                    ),
                    events[report].seq(),
                    o.seq(),
                ))
            }
            Check::PublishFlags {
                topic,
                retained,
                qos,
            } => {
                let (o, found) = events.iter().find_map(|o| {
                    let (t, q, r) = o.publish_flags()?;
                    if t != topic {
                        return None;
                    }
                    if retained.is_some_and(|want| want != r) {
                        let how = if r { "retained" } else { "not retained" };
                        return Some((o, format!("it published to \"{t}\" {how}")));
                    }
                    if qos.is_some_and(|want| want != q) {
                        return Some((o, format!("it published to \"{t}\" with QoS {q}")));
                    }
                    None
                })?;
                Some(fail(found, from, o.seq()))
            }
            Check::AtMost { what, count, per } => {
                let counted: Vec<&Observed> = since(events, self.reached)
                    .iter()
                    .filter(|o| match what {
                        Counted::Publishes => o.publish_from_device().is_some(),
                        Counted::Connections => {
                            matches!(o.event.kind, EventKind::TlsAccepted { .. })
                        }
                    })
                    .collect();
                let n = *count as usize;
                let per_us = per.as_micros() as u64;
                let burst = counted
                    .windows(n + 1)
                    .find(|w| w[n].t_us() - w[0].t_us() < per_us)?;
                let noun = match what {
                    Counted::Publishes => "messages",
                    Counted::Connections => "connections",
                };
                Some(fail(
                    format!(
                        "it made {} {noun} in {:.2} s",
                        n + 1,
                        (burst[n].t_us() - burst[0].t_us()) as f64 / 1e6
                    ),
                    burst[0].seq(),
                    burst[n].seq(),
                ))
            }
            _ => None,
        }
    }

    /// Describes a violation, with the failure before it when there was one (the
    /// firmware that fails once and then retries without checking).
    fn after_failure(&self, scene: &Scene, events: &[Observed], at: u64, what: &str) -> String {
        let before: Vec<Observed> = events.iter().filter(|o| o.seq() < at).cloned().collect();
        match Attempts::read(scene, &before).last_failure_text() {
            Some(failure) => format!("{what} on a later attempt, after {failure}"),
            None => what.to_owned(),
        }
    }

    fn positive(
        &self,
        events: &[Observed],
        now_us: u64,
        deadline: u64,
        wanted: impl Fn(&Observed) -> bool,
        otherwise: &str,
    ) -> Judgement {
        if events.iter().any(|o| o.t_us() <= deadline && wanted(o)) {
            return pass();
        }
        if now_us >= deadline {
            return fail(
                format!("{otherwise} in time"),
                self.act.seq,
                last_seq(events, self.act),
            );
        }
        Judgement::Pending { until_us: deadline }
    }

    /// A positive expectation that needs the device connected: it stops waiting
    /// once the device has failed twice for a reason no retry changes (its TLS
    /// engine refusing the handshake; when it needs the whole connection, also
    /// the broker refusing its CONNECT).
    fn positive_unless_refused(
        &self,
        scene: &Scene,
        events: &[Observed],
        now_us: u64,
        deadline: u64,
        wanted: impl Fn(&Observed) -> bool,
        needs: Needs,
    ) -> Judgement {
        if events.iter().any(|o| o.t_us() <= deadline && wanted(o)) {
            return pass();
        }
        let attempts = Attempts::read(scene, events);
        let refusals = match needs {
            Needs::Connection => attempts.refusals,
            Needs::Handshake => 0,
        };
        let hopeless = attempts.verdicts + refusals;
        let last = last_seq(events, self.act);
        if hopeless >= 2 {
            let why = match &attempts.last_verdict {
                Some((code, name)) if attempts.verdicts >= 2 => format!(
                    "the device refused the broker on {} attempts (BearSSL {code} {name}), an answer no retry changes",
                    attempts.verdicts
                ),
                // Which event came last (the broker's CONNACK or the device's
                // report of it) is a race; the CONNACK code is named either way.
                _ => {
                    let code = attempts
                        .last_refusal
                        .map(|c| format!(" (CONNACK {c})"))
                        .unwrap_or_default();
                    format!(
                        "the broker refused its CONNECT on {} attempts{code}; last, {}",
                        attempts.failures,
                        attempts.last_failure_text().unwrap_or("refused")
                    )
                }
            };
            return fail(why, self.act.seq, last);
        }
        if now_us >= deadline {
            let why = match (attempts.evidence, attempts.last_failure_text()) {
                (None, _) => "the device never tried to reach the broker".to_owned(),
                (Some(_), Some(failure)) => format!("it did not happen in time; last, {failure}"),
                (Some(_), None) => "it did not happen in time".to_owned(),
            };
            return fail(why, self.act.seq, last);
        }
        Judgement::Pending { until_us: deadline }
    }

    /// A negative expectation with no violation so far: settled once the device
    /// failed a further attempt after its first failure, or when the settle
    /// window counted from that first failure is over with no new attempt (and
    /// the retry the device announced has had that long too), or, when it never
    /// failed, at the settle window after the act (then only if it tried at all).
    fn settled(&self, scene: &Scene, events: &[Observed], now_us: u64) -> Judgement {
        let attempts = Attempts::read(scene, events);
        if attempts.failures >= 2 {
            return pass();
        }
        let settle_us = scene.settle.as_micros() as u64;
        let after_act = self.act.plus(scene.settle);
        let settle_at = match attempts.first_failure_us {
            // A real board's first failure can come seconds after the act (boot,
            // Wi-Fi, NTP, a handshake at 80 MHz): the window that must cover its
            // next attempt starts there, not at the act.
            Some(first) => attempts
                .retry_at_us
                .map_or(0, |retry| retry.saturating_add(settle_us))
                .max(first.saturating_add(settle_us))
                .max(after_act),
            None => after_act,
        };
        if now_us < settle_at {
            return Judgement::Pending {
                until_us: settle_at,
            };
        }
        match attempts.evidence {
            Some(_) => pass(),
            None => inconclusive(never_tried(scene), self.act.seq, last_seq(events, self.act)),
        }
    }

    fn tls_failure(&self, scene: &Scene, events: &[Observed], now_us: u64, code: i64) -> Judgement {
        let last = last_seq(events, self.act);
        if !scene.log.reports(SemanticEvent::TlsError) {
            return fail(
                format!(
                    "its log profile `{}` has no pattern for TLS failures: this firmware never says why TLS failed",
                    scene.log.name()
                ),
                self.act.seq,
                last,
            );
        }
        let report = events.iter().position(|o| o.said(SemanticEvent::TlsError));
        let success = events.iter().position(Observed::tls_success);
        match (report, success) {
            (_, Some(s)) if report.is_none_or(|r| s < r) => fail(
                format!(
                    "its TLS connection succeeded: {}",
                    describe_success(&events[s])
                ),
                self.act.seq,
                events[s].seq(),
            ),
            (Some(r), _) => {
                let o = &events[r];
                let reported = o.number("code");
                if reported != Some(code) {
                    return fail(
                        format!(
                            "it reported code {} ({})",
                            o.field("code").unwrap_or("?"),
                            o.field("text").unwrap_or_default()
                        ),
                        self.act.seq,
                        o.seq(),
                    );
                }
                if let Some(broken) = self.violation(scene, events, now_us) {
                    return broken;
                }
                self.settled(scene, events, now_us)
            }
            (None, _) => {
                let settle_at = self.act.plus(scene.settle);
                if now_us < settle_at {
                    return Judgement::Pending {
                        until_us: settle_at,
                    };
                }
                match Attempts::read(scene, events).evidence {
                    Some(_) => fail(
                        format!(
                            "it reported no TLS failure within the settle window ({})",
                            show(scene.settle)
                        ),
                        self.act.seq,
                        last,
                    ),
                    None => inconclusive(never_tried(scene), self.act.seq, last),
                }
            }
        }
    }

    fn mqtt_state(
        &self,
        scene: &Scene,
        events: &[Observed],
        now_us: u64,
        state: i64,
        within: Duration,
    ) -> Judgement {
        let wanted = if state == 0 {
            SemanticEvent::MqttConnected
        } else {
            SemanticEvent::MqttFailed
        };
        let last = last_seq(events, self.act);
        if !scene.log.reports(wanted) {
            return fail(
                format!(
                    "its log profile `{}` has no pattern for `{wanted}`",
                    scene.log.name()
                ),
                self.act.seq,
                last,
            );
        }
        let deadline = self.act.plus(within);
        let report = events.iter().find(|o| {
            o.t_us() <= deadline
                && (o.said(SemanticEvent::MqttConnected) || o.said(SemanticEvent::MqttFailed))
        });
        match report {
            Some(o) if o.said(SemanticEvent::MqttConnected) => {
                if state == 0 {
                    pass()
                } else {
                    fail("it connected (state 0)", self.act.seq, o.seq())
                }
            }
            Some(o) => {
                if o.number("rc") == Some(state) {
                    pass()
                } else {
                    fail(
                        format!("it reported rc={}", o.field("rc").unwrap_or("?")),
                        self.act.seq,
                        o.seq(),
                    )
                }
            }
            None if now_us >= deadline => fail(
                format!("it reported no MQTT state within {}", show(within)),
                self.act.seq,
                last,
            ),
            None => Judgement::Pending { until_us: deadline },
        }
    }

    fn client_hello(
        &self,
        scene: &Scene,
        events: &[Observed],
        now_us: u64,
        judge: impl Fn(&crate::timeline::ClientHello) -> Option<String>,
    ) -> Judgement {
        let hello = events.iter().find_map(|o| match &o.event.kind {
            EventKind::TlsClientHello { hello, .. } => Some((o.seq(), hello)),
            _ => None,
        });
        match hello {
            Some((seq, hello)) => match judge(hello) {
                None => pass(),
                Some(found) => fail(found, self.act.seq, seq),
            },
            None => {
                let settle_at = self.act.plus(scene.settle);
                if now_us < settle_at {
                    return Judgement::Pending {
                        until_us: settle_at,
                    };
                }
                fail(
                    format!(
                        "no ClientHello from the device reached the broker within the settle window ({})",
                        show(scene.settle)
                    ),
                    self.act.seq,
                    last_seq(events, self.act),
                )
            }
        }
    }
}

fn never_tried(scene: &Scene) -> String {
    format!(
        "the device never tried to reach the broker within the settle window ({}): no DNS query for {}, no connection, no ClientHello, no CONNECT, no failure reported",
        show(scene.settle),
        scene.broker_names.join(" or ")
    )
}

fn describe_success(o: &Observed) -> String {
    match (&o.event.kind, o.line()) {
        (EventKind::MqttConnack { .. }, _) => "the broker accepted its CONNECT (CONNACK 0)".into(),
        (EventKind::TlsHandshake { .. }, _) => "a TLS handshake completed".into(),
        (_, Some(line)) => format!("it printed `{line}`"),
        _ => "it connected".into(),
    }
}
