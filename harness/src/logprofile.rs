//! Log profiles: how a firmware reports the semantic events scenarios talk about.
//!
//! The reference firmware prints `[tls] error code=56 ...`; other firmware prints
//! whatever its authors chose. A profile maps each [`SemanticEvent`] to a regular
//! expression over one serial line, so the same scenarios run against either.
//! Network-side checks need no profile: the lab is the ground truth.
//!
//! ```
//! use hil::logprofile::{LogProfile, SemanticEvent};
//!
//! let profile = LogProfile::reference();
//! let seen = profile.recognise("[mqtt] failed rc=-2").expect("a known line");
//! assert_eq!(seen.event, SemanticEvent::MqttFailed);
//! assert_eq!(seen.field("rc"), Some("-2"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use toml::Spanned;

mod check;
pub use check::{
    check, read_transcript, step_uses, CheckReport, CheckedLine, Reads, StepUse, TranscriptLine,
};

macro_rules! events {
    ($($variant:ident => $key:literal, [$($req:literal),*], [$($field:literal),*], $doc:literal;)*) => {
        /// An event the firmware reports on its serial port.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SemanticEvent {
            $(#[doc = $doc] $variant,)*
        }

        impl SemanticEvent {
            /// Every event.
            pub const ALL: &'static [SemanticEvent] = &[$(SemanticEvent::$variant,)*];

            /// The key used in profile files.
            pub const fn key(self) -> &'static str {
                match self { $(SemanticEvent::$variant => $key,)* }
            }

            /// What the event means.
            pub const fn description(self) -> &'static str {
                match self { $(SemanticEvent::$variant => $doc,)* }
            }

            /// The named groups a pattern for this event must have: the steps
            /// read them (`tls_error` without `code` could never be judged).
            pub const fn required_fields(self) -> &'static [&'static str] {
                match self { $(SemanticEvent::$variant => &[$($req),*],)* }
            }

            /// The named groups the harness knows for this event (others are
            /// kept and shown, but nothing reads them).
            pub const fn known_fields(self) -> &'static [&'static str] {
                match self { $(SemanticEvent::$variant => &[$($field),*],)* }
            }
        }
    };
}

events! {
    Boot => "boot", [], ["fw", "version", "reset"], "The firmware started.";
    ProvReady => "prov_ready", [], ["window_ms"], "The provisioning window opened: the harness writes its PROV line now.";
    ProvOk => "prov_ok", [], [], "Provisioning was accepted.";
    ProvError => "prov_error", [], ["reason"], "Provisioning was refused.";
    WifiConnecting => "wifi_connecting", [], ["ssid"], "Joining Wi-Fi.";
    WifiConnected => "wifi_connected", [], ["ip"], "Joined Wi-Fi.";
    WifiFailed => "wifi_failed", [], [], "Could not join Wi-Fi.";
    DnsResolved => "dns_resolved", [], ["host", "ip"], "A name resolved.";
    DnsFailed => "dns_failed", [], ["host"], "A name did not resolve.";
    NtpSynced => "ntp_synced", [], ["epoch"], "The clock was set by SNTP.";
    NtpFailed => "ntp_failed", [], [], "SNTP gave no time.";
    TlsConnecting => "tls_connecting", [], ["host", "port", "mode"], "A TLS connection starts.";
    TlsOk => "tls_ok", [], ["version", "suite", "mfln"], "The TLS handshake completed.";
    TlsError => "tls_error", ["code"], ["code", "text"], "The TLS connection failed; `code` is BearSSL's error number.";
    MqttConnected => "mqtt_connected", [], ["client_id"], "MQTT connected (PubSubClient state 0).";
    MqttFailed => "mqtt_failed", ["rc"], ["rc"], "MQTT connection failed; `rc` is PubSubClient's state.";
    MqttSubscribed => "mqtt_subscribed", [], ["topic"], "Subscribed.";
    MqttPublished => "mqtt_published", [], ["topic", "bytes", "ok"], "Published.";
    MqttMessage => "mqtt_message", [], ["topic", "payload"], "A message arrived.";
    MqttRetry => "mqtt_retry", [], ["in_ms"], "The next attempt is scheduled.";
    Heap => "heap", [], ["free"], "Free heap.";
    Crash => "crash", [], ["cause"], "An exception or watchdog reset.";
    RomBanner => "rom_banner", [], ["cause", "mode", "sub"], "The ROM's boot banner: the chip (re)started.";
}

impl fmt::Display for SemanticEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A serial line recognised as a semantic event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// Which event.
    pub event: SemanticEvent,
    /// Named groups of the pattern.
    pub fields: BTreeMap<String, String>,
}

impl Recognised {
    /// One field's text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A profile that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum LogProfileError {
    /// No profile of that name, and no such file.
    #[error("unknown log profile `{name}`")]
    #[diagnostic(
        code(hil::logprofile::unknown),
        help("available profiles: {available}")
    )]
    Unknown {
        /// What was asked for.
        name: String,
        /// The profiles found.
        available: String,
    },
    /// The file could not be read.
    #[error("cannot read log profile {}", path.display())]
    #[diagnostic(code(hil::logprofile::read))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or not the expected shape.
    #[error("{}:{line}: {message}", path.display())]
    #[diagnostic(
        code(hil::logprofile::syntax),
        help("a profile is `name = \"...\"`, an optional `description`, and an [events] table of event = 'regex' (see docs/log-profiles.md)")
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line of the problem (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A loaded log profile.
#[derive(Debug, Clone)]
pub struct LogProfile {
    name: String,
    description: String,
    patterns: Vec<(SemanticEvent, Regex)>,
}

const REFERENCE: &str = include_str!("../../fixtures/log-profiles/reference.toml");

/// A profile file as written, every part with where it is.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<Spanned<String>>,
    events: Spanned<RawEvents>,
}

/// The `[events]` table in file order (first matching pattern wins).
struct RawEvents(Vec<(Spanned<String>, Spanned<toml::Value>)>);

impl<'de> serde::Deserialize<'de> for RawEvents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawEvents;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of event = 'regex'")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawEvents, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(RawEvents(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl LogProfile {
    /// The reference firmware's profile (built in).
    pub fn reference() -> LogProfile {
        // The built-in text is covered by a unit test; should it ever fail to
        // parse, an empty profile makes every serial step say so plainly.
        LogProfile::parse(REFERENCE, Path::new("fixtures/log-profiles/reference.toml")).unwrap_or(
            LogProfile {
                name: "reference".into(),
                description: String::new(),
                patterns: Vec::new(),
            },
        )
    }

    /// Parses profile text; `origin` names the file in error messages.
    ///
    /// Strict: an unknown top-level key, an unknown event, a pattern that is not
    /// a string or not a valid regular expression, or a pattern without a named
    /// group its event needs (`code` for `tls_error`, `rc` for `mqtt_failed`) is
    /// an error at its line, never skipped.
    pub fn parse(text: &str, origin: &Path) -> Result<LogProfile, LogProfileError> {
        let syntax = |offset: usize, message: String| LogProfileError::Syntax {
            path: origin.to_owned(),
            line: line_at(text, offset),
            message,
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e: toml::de::Error| {
            let offset = e.span().map_or(0, |span| span.start);
            syntax(offset, e.message().to_owned())
        })?;
        let mut patterns = Vec::new();
        for (key, value) in raw.events.into_inner().0 {
            let at = key.span().start;
            let key = key.into_inner();
            let event = SemanticEvent::ALL
                .iter()
                .copied()
                .find(|e| e.key() == key)
                .ok_or_else(|| {
                    let known: Vec<&str> = SemanticEvent::ALL.iter().map(|e| e.key()).collect();
                    syntax(
                        at,
                        format!("unknown event `{key}` (events: {})", known.join(", ")),
                    )
                })?;
            if patterns.iter().any(|(e, _)| *e == event) {
                return Err(syntax(at, format!("`{key}` is given twice")));
            }
            let pattern = value.get_ref().as_str().ok_or_else(|| {
                syntax(
                    at,
                    format!("`{key}` must be a string (a regular expression)"),
                )
            })?;
            let regex = Regex::new(pattern).map_err(|e| syntax(at, format!("`{key}`: {e}")))?;
            for field in event.required_fields() {
                if !regex.capture_names().flatten().any(|n| n == *field) {
                    return Err(syntax(
                        at,
                        format!(
                            "`{key}` needs a named group `(?P<{field}>...)`: the steps read the {field} from it"
                        ),
                    ));
                }
            }
            patterns.push((event, regex));
        }
        Ok(LogProfile {
            name: raw.name.into_inner(),
            description: raw.description.map(Spanned::into_inner).unwrap_or_default(),
            patterns,
        })
    }

    /// Loads a profile by name from `dir` (`<dir>/<name>.toml`), or from a path to
    /// a `.toml` file.
    pub fn load(name_or_path: &str, dir: &Path) -> Result<LogProfile, LogProfileError> {
        let as_path = Path::new(name_or_path);
        let path = if name_or_path.ends_with(".toml") {
            as_path.to_owned()
        } else {
            dir.join(format!("{name_or_path}.toml"))
        };
        if !path.is_file() {
            if name_or_path == "reference" {
                return Ok(LogProfile::reference());
            }
            return Err(LogProfileError::Unknown {
                name: name_or_path.into(),
                available: available(dir),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| LogProfileError::Read {
            path: path.clone(),
            source,
        })?;
        LogProfile::parse(&text, &path)
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line about it.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether this firmware reports `event` at all.
    pub fn reports(&self, event: SemanticEvent) -> bool {
        self.patterns.iter().any(|(e, _)| *e == event)
    }

    /// The events this profile has a pattern for, in file order.
    pub fn events(&self) -> impl Iterator<Item = SemanticEvent> + '_ {
        self.patterns.iter().map(|(e, _)| *e)
    }

    /// Recognises one serial line (CR/LF already removed): the first pattern in
    /// file order that matches wins.
    pub fn recognise(&self, line: &str) -> Option<Recognised> {
        self.patterns
            .iter()
            .find_map(|(event, regex)| matched(*event, regex, line))
    }

    /// Every event whose pattern matches `line`, in file order (the first is
    /// what [`LogProfile::recognise`] says; more than one means the profile is
    /// ambiguous for that line).
    pub fn recognise_all(&self, line: &str) -> Vec<Recognised> {
        self.patterns
            .iter()
            .filter_map(|(event, regex)| matched(*event, regex, line))
            .collect()
    }
}

fn matched(event: SemanticEvent, regex: &Regex, line: &str) -> Option<Recognised> {
    let captures = regex.captures(line)?;
    let fields = regex
        .capture_names()
        .flatten()
        .filter_map(|name| Some((name.to_owned(), captures.name(name)?.as_str().to_owned())))
        .collect();
    Some(Recognised { event, fields })
}

fn available(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".toml")
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    if !names.iter().any(|n| n == "reference") {
        names.push("reference".into());
    }
    names.sort();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/log-profiles")
    }

    #[test]
    fn the_built_in_reference_profile_parses_and_covers_every_event() {
        let text = REFERENCE;
        let profile = LogProfile::parse(text, Path::new("reference.toml")).unwrap();
        for event in SemanticEvent::ALL {
            assert!(profile.reports(*event), "reference profile lacks {event}");
        }
    }

    #[test]
    fn the_seed_profile_reads_forum_lines_and_admits_it_has_no_tls_reason() {
        let seed = LogProfile::load("seed-style", &fixtures()).unwrap();
        let line = "Attempting MQTT connection...failed, rc=-2 try again in 5 seconds";
        let seen = seed.recognise(line).unwrap();
        assert_eq!(
            (seen.event, seen.field("rc")),
            (SemanticEvent::MqttFailed, Some("-2"))
        );
        assert!(!seed.reports(SemanticEvent::TlsError));
    }

    #[test]
    fn the_rom_banner_is_recognised_with_its_two_spaces() {
        let seen = LogProfile::reference()
            .recognise(" ets Jan  8 2013,rst cause:2, boot mode:(3,6)")
            .unwrap();
        assert_eq!(seen.event, SemanticEvent::RomBanner);
        assert_eq!(seen.field("cause"), Some("2"));
    }

    #[test]
    fn errors_point_at_the_line() {
        let text = "name = \"x\"\n[events]\nboot = '^ok'\ntls_eror = 'x'\n";
        let err = LogProfile::parse(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.toml:4:") && err.contains("unknown event `tls_eror`"),
            "{err}"
        );
        let text = "name = \"x\"\n[events]\nboot = '(unclosed'\n";
        let err = LogProfile::parse(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml:3:"), "{err}");
        let err = LogProfile::parse("name = [", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml:1:"), "{err}");
    }

    fn refusal(text: &str) -> String {
        LogProfile::parse(text, Path::new("p.toml"))
            .map(|p| format!("accepted: {}", p.name()))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_pattern_without_the_group_its_event_needs_is_refused_at_its_line() {
        let err =
            refusal("name = \"x\"\n[events]\nboot = '^ok'\ntls_error = '^TLS failed (\\d+)'\n");
        assert!(
            err.starts_with("p.toml:4:") && err.contains("(?P<code>"),
            "{err}"
        );
        let err =
            refusal("name = \"x\"\n\n[events]\nmqtt_failed = 'failed, rc=(?P<state>-?\\d+)'\n");
        assert!(
            err.starts_with("p.toml:4:") && err.contains("(?P<rc>"),
            "{err}"
        );
        // With the group, the same pattern loads.
        let ok = refusal("name = \"x\"\n[events]\nmqtt_failed = 'failed, rc=(?P<rc>-?\\d+)'\n");
        assert_eq!(ok, "accepted: x");
    }

    #[test]
    fn unknown_top_level_keys_and_non_string_patterns_are_refused_at_their_line() {
        let err = refusal("name = \"x\"\ndescripton = \"typo\"\n[events]\n");
        assert!(
            err.starts_with("p.toml:2:") && err.contains("descripton"),
            "{err}"
        );
        let err = refusal("name = \"x\"\n[events]\nboot = 3\n");
        assert!(
            err.starts_with("p.toml:3:") && err.contains("must be a string"),
            "{err}"
        );
        let err = refusal("description = \"no name\"\n[events]\n");
        assert!(err.contains("name"), "{err}");
        let err = refusal("name = \"x\"\n");
        assert!(err.contains("events"), "{err}");
    }

    #[test]
    fn patterns_are_tried_in_file_order() {
        let text =
            "name = \"x\"\n[events]\nmqtt_retry = 'retry'\nmqtt_failed = '(?P<rc>-?\\d+) retry'\n";
        let profile = LogProfile::parse(text, Path::new("p.toml")).unwrap();
        let line = "-2 retry";
        assert_eq!(
            profile.recognise(line).map(|r| r.event),
            Some(SemanticEvent::MqttRetry)
        );
        let all: Vec<_> = profile
            .recognise_all(line)
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(all, [SemanticEvent::MqttRetry, SemanticEvent::MqttFailed]);
    }

    #[test]
    fn unknown_profiles_list_the_available_ones() {
        let err = LogProfile::load("nope", &fixtures()).unwrap_err();
        let help = miette::Diagnostic::help(&err)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("reference") && help.contains("seed-style"),
            "{help}"
        );
    }
}
