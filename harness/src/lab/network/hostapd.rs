//! A Wi-Fi access point for the board, run by hostapd on a USB adapter: the
//! configuration the lab writes (WPA2-PSK with CCMP on 2.4 GHz, what every
//! ESP8266 joins) and the child process that serves it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::timeline::{EventKind, Source, Timeline};

/// How long hostapd may take to bring the access point up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The access point the board joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApConfig {
    /// The network name (1 to 32 bytes).
    pub ssid: String,
    /// The WPA2 passphrase (8 to 63 printable ASCII characters) or a 64-digit
    /// hexadecimal PSK. Never serialised.
    #[serde(skip)]
    pub psk: String,
    /// The 2.4 GHz channel, 1 to 13 (14 in Japan only, 802.11b).
    pub channel: u8,
    /// The ISO 3166-1 country code that sets the regulatory domain, e.g. `DE`;
    /// `None` leaves the adapter in the world domain (channels 12-13 passive).
    pub country: Option<String>,
}

impl ApConfig {
    /// An access point on channel 6 in the world regulatory domain.
    pub fn new(ssid: impl Into<String>, psk: impl Into<String>) -> ApConfig {
        ApConfig {
            ssid: ssid.into(),
            psk: psk.into(),
            channel: 6,
            country: None,
        }
    }
}

/// Why an access point configuration cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApConfigError {
    /// The SSID is empty or too long.
    #[error("the SSID must be 1 to 32 bytes long (it is {len})")]
    Ssid {
        /// Its length in bytes.
        len: usize,
    },
    /// The passphrase is not one WPA2 accepts.
    #[error(
        "the WPA2 passphrase must be 8 to 63 printable ASCII characters, or 64 hexadecimal digits"
    )]
    Psk,
    /// The channel is not a 2.4 GHz one the ESP8266 uses.
    #[error("channel {channel} is not a 2.4 GHz channel the ESP8266 can use (1 to 13; 14 only with country JP)")]
    Channel {
        /// The channel given.
        channel: u8,
    },
    /// The country is not two letters.
    #[error("`{country}` is not an ISO 3166-1 two-letter country code")]
    Country {
        /// The text given.
        country: String,
    },
}

/// Checks `ap` and returns it with the country in upper case.
pub(crate) fn validate(ap: &ApConfig) -> Result<ApConfig, ApConfigError> {
    let len = ap.ssid.len();
    if !(1..=32).contains(&len) {
        return Err(ApConfigError::Ssid { len });
    }
    let passphrase =
        (8..=63).contains(&ap.psk.len()) && ap.psk.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let hex = ap.psk.len() == 64 && ap.psk.bytes().all(|b| b.is_ascii_hexdigit());
    if !passphrase && !hex {
        return Err(ApConfigError::Psk);
    }
    let country = match &ap.country {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(c.to_ascii_uppercase())
        }
        Some(c) => {
            return Err(ApConfigError::Country { country: c.clone() });
        }
        None => None,
    };
    let japan = country.as_deref() == Some("JP");
    let usable = (1..=13).contains(&ap.channel) || (ap.channel == 14 && japan);
    if !usable {
        return Err(ApConfigError::Channel {
            channel: ap.channel,
        });
    }
    Ok(ApConfig {
        country,
        ..ap.clone()
    })
}

/// hostapd's configuration for `ap` on `interface` (`ap` validated).
pub(crate) fn config_text(interface: &str, ap: &ApConfig) -> String {
    let mut out = format!(
        "# Written by hil lab for {interface}; hostapd serves it while the lab runs.\n\
         interface={interface}\n\
         driver=nl80211\n"
    );
    // A printable SSID is written as is; anything else (a newline would end the
    // line and start another key) as hex, which hostapd reads from ssid2.
    let plain = ap.ssid.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !ap.ssid.starts_with(' ')
        && !ap.ssid.ends_with(' ');
    if plain {
        out.push_str(&format!("ssid={}\n", ap.ssid));
    } else {
        out.push_str(&format!("ssid2={}\nutf8_ssid=1\n", hex::encode(&ap.ssid)));
    }
    if let Some(country) = &ap.country {
        out.push_str(&format!("country_code={country}\nieee80211d=1\n"));
    }
    // Channel 14 allows 802.11b only.
    let mode = if ap.channel == 14 { "b" } else { "g" };
    out.push_str(&format!(
        "hw_mode={mode}\n\
         channel={}\n\
         wmm_enabled=1\n\
         auth_algs=1\n\
         ignore_broadcast_ssid=0\n\
         wpa=2\n\
         wpa_key_mgmt=WPA-PSK\n\
         rsn_pairwise=CCMP\n",
        ap.channel
    ));
    if ap.psk.len() == 64 {
        out.push_str(&format!("wpa_psk={}\n", ap.psk));
    } else {
        out.push_str(&format!("wpa_passphrase={}\n", ap.psk));
    }
    out
}

/// Writes the configuration readable by its owner only (it holds the PSK).
pub(crate) fn write_config(dir: &Path, interface: &str, ap: &ApConfig) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!("hostapd-{interface}.conf"));
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::io::Write::write_all(&mut file, config_text(interface, ap).as_bytes())?;
    Ok(path)
}

/// Why hostapd did not bring the access point up.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// It could not be run.
    Spawn(std::io::Error),
    /// It exited, or did not say AP-ENABLED in time; its last lines.
    NotEnabled { reason: String, output: String },
}

/// A running hostapd.
#[derive(Debug)]
pub(crate) struct Hostapd {
    child: Child,
}

impl Hostapd {
    /// Starts hostapd on `config` and returns once it reports `AP-ENABLED`. Its
    /// later lines (stations joining and leaving) go on the timeline as notes.
    pub async fn start(config: &Path, timeline: &Timeline) -> Result<Hostapd, StartFailure> {
        let mut child = Command::new("hostapd")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(StartFailure::Spawn)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(StartFailure::NotEnabled {
                reason: "its output could not be read".into(),
                output: String::new(),
            });
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut errors = BufReader::new(stderr).lines();
        let mut seen: Vec<String> = Vec::new();
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) => {
                            let enabled = line.contains("AP-ENABLED");
                            seen.push(line);
                            if enabled {
                                return Ok(());
                            }
                        }
                        _ => return Err("it exited"),
                    },
                    line = errors.next_line() => {
                        if let Ok(Some(line)) = line {
                            seen.push(line);
                        }
                    }
                }
            }
        })
        .await;
        let tail = |seen: &[String]| {
            let start = seen.len().saturating_sub(12);
            seen[start..].join("\n")
        };
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                let _ = child.kill().await;
                return Err(StartFailure::NotEnabled {
                    reason: reason.into(),
                    output: tail(&seen),
                });
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(StartFailure::NotEnabled {
                    reason: format!(
                        "it did not report AP-ENABLED within {} s",
                        START_TIMEOUT.as_secs()
                    ),
                    output: tail(&seen),
                });
            }
        }
        let timeline = timeline.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("AP-STA-") || line.contains("AP-DISABLED") {
                    timeline.record(
                        Source::Harness,
                        None,
                        EventKind::Diagnostic {
                            text: format!("hostapd: {line}"),
                        },
                    );
                }
            }
        });
        tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });
        Ok(Hostapd { child })
    }

    /// Asks hostapd to stop (SIGTERM: it takes the interface out of AP mode),
    /// and kills it if it has not within five seconds.
    pub fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hostapd's configuration as key=value pairs, comments skipped.
    fn parse(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_wpa2_access_point_for_the_esp8266() {
        let mut ap = ApConfig::new("hil lab", "correct horse");
        ap.channel = 11;
        ap.country = Some("de".into());
        let ap = validate(&ap).unwrap();
        let pairs = parse(&config_text("wlx00c0ca", &ap));
        for (key, want) in [
            ("interface", "wlx00c0ca"),
            ("driver", "nl80211"),
            ("ssid", "hil lab"),
            ("country_code", "DE"),
            ("ieee80211d", "1"),
            ("hw_mode", "g"),
            ("channel", "11"),
            ("wpa", "2"),
            ("wpa_key_mgmt", "WPA-PSK"),
            ("rsn_pairwise", "CCMP"),
            ("wpa_passphrase", "correct horse"),
            ("auth_algs", "1"),
        ] {
            assert_eq!(get(&pairs, key), Some(want), "{key}");
        }
        // Every key once.
        let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
        assert!(get(&pairs, "wpa_psk").is_none());
    }

    #[test]
    fn a_hex_psk_no_country_and_an_ssid_that_would_inject_a_line() {
        let psk = "0123456789abcdef".repeat(4);
        let ap = validate(&ApConfig::new("lab\nwpa=0", psk.clone())).unwrap();
        let text = config_text("wlan0", &ap);
        let pairs = parse(&text);
        assert_eq!(get(&pairs, "wpa_psk"), Some(psk.as_str()));
        assert!(get(&pairs, "wpa_passphrase").is_none());
        assert!(get(&pairs, "country_code").is_none());
        assert_eq!(
            get(&pairs, "ssid2"),
            Some(hex::encode("lab\nwpa=0").as_str())
        );
        assert!(get(&pairs, "ssid").is_none());
        assert_eq!(get(&pairs, "wpa"), Some("2"));
        assert_eq!(text.matches("wpa=").count(), 1, "{text}");
    }

    #[test]
    fn channel_14_is_japan_and_802_11b_only() {
        let mut ap = ApConfig::new("x", "12345678");
        ap.channel = 14;
        assert_eq!(validate(&ap), Err(ApConfigError::Channel { channel: 14 }));
        ap.country = Some("JP".into());
        let ap = validate(&ap).unwrap();
        assert_eq!(
            get(&parse(&config_text("wlan0", &ap)), "hw_mode"),
            Some("b")
        );
    }

    #[test]
    fn bad_access_points_say_what_is_wrong() {
        let ok = ApConfig::new("lab", "12345678");
        assert!(validate(&ok).is_ok());
        let cases = [
            (
                ApConfig {
                    ssid: String::new(),
                    ..ok.clone()
                },
                "1 to 32 bytes",
            ),
            (
                ApConfig {
                    ssid: "x".repeat(33),
                    ..ok.clone()
                },
                "(it is 33)",
            ),
            (
                ApConfig {
                    psk: "short".into(),
                    ..ok.clone()
                },
                "8 to 63",
            ),
            (
                ApConfig {
                    psk: "tab\there!".into(),
                    ..ok.clone()
                },
                "printable",
            ),
            (
                ApConfig {
                    psk: "g".repeat(64),
                    ..ok.clone()
                },
                "64 hexadecimal",
            ),
            (
                ApConfig {
                    channel: 0,
                    ..ok.clone()
                },
                "channel 0",
            ),
            (
                ApConfig {
                    channel: 36,
                    ..ok.clone()
                },
                "channel 36",
            ),
            (
                ApConfig {
                    country: Some("DEU".into()),
                    ..ok.clone()
                },
                "`DEU`",
            ),
        ];
        for (ap, says) in cases {
            let err = validate(&ap).unwrap_err().to_string();
            assert!(err.contains(says), "{ap:?}: {err}");
        }
    }

    #[test]
    fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ap = validate(&ApConfig::new("lab", "12345678")).unwrap();
        let path = write_config(dir.path(), "wlan0", &ap).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Written again over an old one.
        write_config(dir.path(), "wlan0", &ap).unwrap();
    }
}
