//! What a log profile makes of a firmware's transcript, line by line, and which
//! Then steps it leaves without a verdict: what `hil logprofile check` prints.
//!
//! ```
//! use hil::logprofile::{check, LogProfile, SemanticEvent};
//!
//! let seed = LogProfile::parse(
//!     "name = \"mine\"\n[events]\nmqtt_failed = 'failed, rc=(?P<rc>-?\\d+)'\n",
//!     std::path::Path::new("mine.toml"),
//! )?;
//! let report = check(&seed, b"[   1.250] Attempting MQTT connection...failed, rc=-2\r\nhello\n");
//! assert_eq!(report.lines[0].matches[0].event, SemanticEvent::MqttFailed);
//! assert!(report.lines[1].matches.is_empty());
//! assert!(report.cannot_judge().any(|s| s.phrase.starts_with("the device reports a TLS failure")));
//! # Ok::<(), hil::logprofile::LogProfileError>(())
//! ```

use super::{LogProfile, Recognised, SemanticEvent};

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptLine {
    /// 1-based line number in the file.
    pub number: usize,
    /// Seconds since the scenario started, when the line came from a run's
    /// `transcript.txt` (`[   12.345] ...`).
    pub at: Option<f64>,
    /// The line as the firmware printed it (CR/LF removed, bytes that are not
    /// UTF-8 replaced).
    pub text: String,
    /// A note of the harness's own (`>> sent PROV ...`, `>> step: ...`), not a
    /// line the firmware printed.
    pub harness: bool,
}

/// The seconds of a run transcript's `[   12.345] ` stamp, and where the line
/// proper starts.
fn stamp(text: &str) -> Option<(f64, usize)> {
    let inner_end = text.strip_prefix('[')?.find("] ")? + 1;
    let inner = text[1..inner_end].trim_start();
    let (whole, fraction) = inner.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(whole) && digits(fraction)) {
        return None;
    }
    Some((inner.parse().ok()?, inner_end + 2))
}

/// Splits a transcript into lines: a run's `transcript.txt` (each line stamped
/// `[   12.345] `, harness notes after `>> `) or raw serial output, any bytes.
pub fn read_transcript(bytes: &[u8]) -> Vec<TranscriptLine> {
    let mut lines = Vec::new();
    let mut parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    for (index, raw) in parts.into_iter().enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = String::from_utf8_lossy(raw).into_owned();
        let (at, rest) = match stamp(&text) {
            Some((seconds, start)) => (Some(seconds), start),
            None => (None, 0),
        };
        let body = &text[rest..];
        let (harness, body) = match (at, body.strip_prefix(">> ")) {
            (Some(_), Some(note)) => (true, note),
            _ => (false, body),
        };
        lines.push(TranscriptLine {
            number: index + 1,
            at,
            text: body.to_owned(),
            harness,
        });
    }
    lines
}

/// How a Then step of the vocabulary depends on the serial output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Its verdict comes from the firmware's own lines: without a pattern for
    /// any of these events the step can never pass or fail on its merits.
    Events(&'static [SemanticEvent]),
    /// Judged from the network (or the raw text), but decided early when the
    /// firmware reports one of these; without them it waits for its deadline
    /// or the settle window.
    SoonerWith(&'static [SemanticEvent]),
    /// Reads nothing through the profile.
    Nothing,
}

/// One Then phrase (or one case of it) and what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUse {
    /// The phrase as the step reference (`hil steps`, docs/steps.md) writes it.
    pub phrase: &'static str,
    /// Which case, when it depends on the argument.
    pub case: Option<&'static str>,
    /// What it needs.
    pub reads: Reads,
}

impl StepUse {
    /// The events it reads, if any.
    pub fn events(&self) -> &'static [SemanticEvent] {
        match self.reads {
            Reads::Events(e) | Reads::SoonerWith(e) => e,
            Reads::Nothing => &[],
        }
    }
}

use SemanticEvent as E;

const REFUSAL: &[SemanticEvent] = &[E::TlsError];
const FAILURE: &[SemanticEvent] = &[E::TlsError, E::MqttFailed];
const RESTART: &[SemanticEvent] = &[E::Crash, E::RomBanner, E::Boot];

macro_rules! step {
    ($phrase:literal, $reads:expr) => {
        StepUse {
            phrase: $phrase,
            case: None,
            reads: $reads,
        }
    };
    ($phrase:literal, $case:literal, $reads:expr) => {
        StepUse {
            phrase: $phrase,
            case: Some($case),
            reads: $reads,
        }
    };
}

/// Every Then phrase of the vocabulary with what it reads from the serial
/// output (a test keeps this in step with `hil::runner::steps::vocabulary()`).
pub fn step_uses() -> &'static [StepUse] {
    const USES: &[StepUse] = &[
        step!(
            r#"the serial output contains "<text>" within <duration>"#,
            Reads::Nothing
        ),
        step!(
            "the serial output matches /<regex>/ within <duration>",
            Reads::Nothing
        ),
        step!(
            r#"the serial output never contains "<text>""#,
            Reads::Nothing
        ),
        step!(
            "the device reports a TLS failure with code <n>",
            Reads::Events(&[E::TlsError])
        ),
        step!(
            "the device reports MQTT state <n>",
            "state 0",
            Reads::Events(&[E::MqttConnected])
        ),
        step!(
            "the device reports MQTT state <n>",
            "a state other than 0",
            Reads::Events(&[E::MqttFailed])
        ),
        step!("the board does not reboot", Reads::Events(RESTART)),
        step!(
            "the board reboots within <duration>",
            Reads::Events(RESTART)
        ),
        step!(
            "the TLS handshake succeeds within <duration>",
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            "the TLS handshake does not complete",
            Reads::SoonerWith(FAILURE)
        ),
        step!(
            "the device starts a TLS handshake within <duration>",
            Reads::Nothing
        ),
        step!(r#"the device sent SNI "<host>""#, Reads::Nothing),
        step!("the device sent no SNI", Reads::Nothing),
        step!(
            "the device offered a max fragment length of <n> bytes",
            Reads::Nothing
        ),
        step!(
            "the device connects to the broker within <duration>",
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            "the device sends an MQTT CONNECT within <duration>",
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            "the device never completes an MQTT connection",
            Reads::SoonerWith(FAILURE)
        ),
        step!(
            r#"the device publishes to "<topic>" within <duration>"#,
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            r#"the device publishes a message matching /<regex>/ to "<topic>" within <duration>"#,
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            "the device publishes at most <n> messages per <duration>",
            Reads::Nothing
        ),
        step!(
            "the device opens at most <n> connections per <duration>",
            Reads::Nothing
        ),
        step!(
            r#"the device's publishes to "<topic>" are <not retained|retained>"#,
            Reads::Nothing
        ),
        step!(
            r#"the device's publishes to "<topic>" use QoS <0|1|2>"#,
            Reads::Nothing
        ),
        step!(
            r#"the device subscribes to "<topic>" within <duration>"#,
            Reads::SoonerWith(REFUSAL)
        ),
        step!(
            "the device asked for the time within <duration>",
            Reads::Nothing
        ),
        step!(
            r#"the device looks up "<host>" within <duration>"#,
            Reads::Nothing
        ),
        step!("the transcript matches the snapshot", Reads::Nothing),
    ];
    USES
}

/// One transcript line and the events the profile sees in it (file order; the
/// first is the one the steps use).
#[derive(Debug, Clone)]
pub struct CheckedLine {
    /// The line.
    pub line: TranscriptLine,
    /// Every matching event; empty: unrecognised (or a harness note).
    pub matches: Vec<Recognised>,
}

/// What `hil logprofile check` reports.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Every line with what it maps to.
    pub lines: Vec<CheckedLine>,
    /// Events the profile has no pattern for: the firmware can never be seen to
    /// report them.
    pub never_produced: Vec<SemanticEvent>,
    /// Events the profile has a pattern for that no line of this transcript
    /// matched.
    pub unseen: Vec<SemanticEvent>,
}

impl CheckReport {
    fn producible(&self, event: SemanticEvent) -> bool {
        !self.never_produced.contains(&event)
    }

    /// Then steps whose verdict needs an event this profile can never produce.
    pub fn cannot_judge(&self) -> impl Iterator<Item = &'static StepUse> + '_ {
        step_uses().iter().filter(|s| match s.reads {
            Reads::Events(events) => !events.iter().any(|e| self.producible(*e)),
            _ => false,
        })
    }

    /// Then steps judged all the same, but only at their deadline or the settle
    /// window, because the firmware's failure report is never recognised.
    pub fn judged_late(&self) -> impl Iterator<Item = &'static StepUse> + '_ {
        step_uses().iter().filter(|s| match s.reads {
            Reads::SoonerWith(events) => !events.iter().any(|e| self.producible(*e)),
            _ => false,
        })
    }

    /// Whether the profile recognises the firmware's own boot line. Without it
    /// a reboot is seen from the ROM's banner alone (readable at 115200 after a
    /// restart the chip asked for, garbled but recognised after a hard reset):
    /// a reboot whose banner the console misses (its port reopening after a USB
    /// reset) goes unseen, and `the board does not reboot` cannot tell.
    pub fn sees_boots(&self) -> bool {
        self.producible(SemanticEvent::Boot)
    }

    /// Whether the harness can provision this firmware: it writes its PROV line
    /// when it sees `prov_ready`.
    pub fn provisions(&self) -> bool {
        self.producible(SemanticEvent::ProvReady)
    }

    /// How many firmware lines matched no pattern.
    pub fn unrecognised(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| !l.line.harness && l.matches.is_empty())
            .count()
    }
}

/// Reads `transcript` through `profile`.
pub fn check(profile: &LogProfile, transcript: &[u8]) -> CheckReport {
    let lines: Vec<CheckedLine> = read_transcript(transcript)
        .into_iter()
        .map(|line| {
            let matches = if line.harness {
                Vec::new()
            } else {
                profile.recognise_all(&line.text)
            };
            CheckedLine { line, matches }
        })
        .collect();
    let never_produced = SemanticEvent::ALL
        .iter()
        .copied()
        .filter(|e| !profile.reports(*e))
        .collect();
    let unseen = profile
        .events()
        .filter(|e| {
            !lines
                .iter()
                .any(|l| l.matches.first().is_some_and(|m| m.event == *e))
        })
        .collect();
    CheckReport {
        lines,
        never_produced,
        unseen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_and_raw_serial_read_alike_whatever_the_bytes() {
        let bytes = b"[     0.102]  ets Jan  8 2013,rst cause:2, boot mode:(3,6)\n\
            [     1.500] >> sent PROV <redacted: 12 bytes of provisioning>\n\
            [boot] fw=x\r\n\
            \xff\xfe garbage at 115200\r\n";
        let lines = read_transcript(bytes);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].at, Some(0.102));
        assert_eq!(
            lines[0].text,
            " ets Jan  8 2013,rst cause:2, boot mode:(3,6)"
        );
        assert!(lines[1].harness && lines[1].text.starts_with("sent PROV"));
        assert_eq!((lines[2].at, lines[2].text.as_str()), (None, "[boot] fw=x"));
        assert!(lines[3].text.ends_with(" garbage at 115200"));
        assert_eq!(lines[3].number, 4);
        // Square brackets alone are no stamp.
        assert_eq!(stamp("[tls] error code=56"), None);
        assert_eq!(stamp("[12] x"), None);
    }

    #[test]
    fn a_profile_without_tls_reasons_cannot_judge_the_tls_code_step() {
        let text = "name = \"m\"\n[events]\nmqtt_connected = 'connected'\n";
        let profile = LogProfile::parse(text, std::path::Path::new("m.toml")).unwrap();
        let report = check(&profile, b"connected\n");
        let unjudged: Vec<_> = report.cannot_judge().map(|s| (s.phrase, s.case)).collect();
        assert!(unjudged.contains(&("the device reports a TLS failure with code <n>", None)));
        assert!(unjudged.contains(&(
            "the device reports MQTT state <n>",
            Some("a state other than 0")
        )));
        assert!(!unjudged.contains(&("the device reports MQTT state <n>", Some("state 0"))));
        assert!(unjudged.contains(&("the board does not reboot", None)));
        assert!(report
            .judged_late()
            .any(|s| s.phrase == "the device never completes an MQTT connection"));
        assert!(!report.provisions());
        assert!(!report.sees_boots());
        assert!(report.unseen.is_empty());
    }

    #[test]
    fn the_reference_profile_judges_every_step() {
        let report = check(&LogProfile::reference(), b"");
        assert_eq!(report.cannot_judge().count(), 0);
        assert_eq!(report.judged_late().count(), 0);
        assert!(report.never_produced.is_empty());
    }
}
