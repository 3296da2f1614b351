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

macro_rules! events {
    ($($variant:ident => $key:literal, $doc:literal;)*) => {
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
        }
    };
}

events! {
    Boot => "boot", "The firmware started (fw, version, reset).";
    ProvReady => "prov_ready", "The provisioning window opened.";
    ProvOk => "prov_ok", "Provisioning was accepted.";
    ProvError => "prov_error", "Provisioning was refused (reason).";
    WifiConnecting => "wifi_connecting", "Joining Wi-Fi (ssid).";
    WifiConnected => "wifi_connected", "Joined Wi-Fi (ip).";
    WifiFailed => "wifi_failed", "Could not join Wi-Fi.";
    DnsResolved => "dns_resolved", "A name resolved (host, ip).";
    DnsFailed => "dns_failed", "A name did not resolve (host).";
    NtpSynced => "ntp_synced", "The clock was set by SNTP (epoch).";
    NtpFailed => "ntp_failed", "SNTP gave no time.";
    TlsConnecting => "tls_connecting", "A TLS connection starts (host, port, mode).";
    TlsOk => "tls_ok", "The TLS handshake completed (version, suite, mfln).";
    TlsError => "tls_error", "The TLS connection failed (code, text).";
    MqttConnected => "mqtt_connected", "MQTT connected (client_id).";
    MqttFailed => "mqtt_failed", "MQTT connection failed (rc).";
    MqttSubscribed => "mqtt_subscribed", "Subscribed (topic).";
    MqttPublished => "mqtt_published", "Published (topic, bytes, ok).";
    MqttMessage => "mqtt_message", "A message arrived (topic, payload).";
    MqttRetry => "mqtt_retry", "The next attempt is scheduled (in_ms).";
    Heap => "heap", "Free heap (free).";
    Crash => "crash", "An exception or watchdog reset.";
    RomBanner => "rom_banner", "The ROM's boot banner: the chip (re)started.";
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
        help("a profile is `name = \"...\"` and an [events] table of event = 'regex'")
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

/// The 1-based line where a key starts; `needle` is the key preceded by a newline.
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map_or(1, |at| text[..=at].matches('\n').count() + 1)
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
    pub fn parse(text: &str, origin: &Path) -> Result<LogProfile, LogProfileError> {
        let syntax = |line: usize, message: String| LogProfileError::Syntax {
            path: origin.to_owned(),
            line,
            message,
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |span| {
                text[..span.start.min(text.len())].matches('\n').count() + 1
            });
            syntax(line, e.message().to_owned())
        })?;
        let name = table
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| syntax(1, "missing `name = \"...\"`".into()))?
            .to_owned();
        let description = table
            .get("description")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let events = table
            .get("events")
            .and_then(|v| v.as_table())
            .ok_or_else(|| syntax(1, "missing [events] table".into()))?;
        let mut patterns = Vec::new();
        for (key, value) in events {
            let line = line_of(text, &format!("\n{key}"));
            let event = SemanticEvent::ALL
                .iter()
                .copied()
                .find(|e| e.key() == key)
                .ok_or_else(|| {
                    let known: Vec<&str> = SemanticEvent::ALL.iter().map(|e| e.key()).collect();
                    syntax(
                        line,
                        format!("unknown event `{key}` (events: {})", known.join(", ")),
                    )
                })?;
            let pattern = value.as_str().ok_or_else(|| {
                syntax(
                    line,
                    format!("`{key}` must be a string (a regular expression)"),
                )
            })?;
            let regex = Regex::new(pattern).map_err(|e| syntax(line, format!("`{key}`: {e}")))?;
            patterns.push((event, regex));
        }
        Ok(LogProfile {
            name,
            description,
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

    /// Recognises one serial line (CR/LF already removed), first matching event wins.
    pub fn recognise(&self, line: &str) -> Option<Recognised> {
        self.patterns.iter().find_map(|(event, regex)| {
            let captures = regex.captures(line)?;
            let fields = regex
                .capture_names()
                .flatten()
                .filter_map(|name| {
                    Some((name.to_owned(), captures.name(name)?.as_str().to_owned()))
                })
                .collect();
            Some(Recognised {
                event: *event,
                fields,
            })
        })
    }
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
