//! Provisioning: the one line `PROV <base64 of a JSON object>` the harness writes
//! after `[prov] ready`, and what the firmware uses without it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::descriptor::Knobs;

/// Wi-Fi credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wifi {
    /// Network name.
    pub ssid: String,
    /// Passphrase (secret: never logged).
    pub password: String,
}

impl std::fmt::Debug for Wifi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wifi")
            .field("ssid", &self.ssid)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    /// Host name (or dotted address).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// MQTT identity.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MqttIdentity {
    /// Client id; empty means "derive one from the MAC".
    #[serde(default)]
    pub client_id: String,
    /// User name, if any.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (secret: never logged).
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for MqttIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttIdentity")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topics {
    /// Where telemetry goes.
    pub publish: String,
    /// Where commands come from.
    pub subscribe: String,
}

/// Everything provisioning can set. Optional fields keep their compiled-in value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Wi-Fi credentials.
    pub wifi: Wifi,
    /// DNS server `host:port` (default: the one DHCP gave).
    #[serde(default)]
    pub dns: Option<String>,
    /// NTP server `host[:port]` (default: DHCP's, else pool.ntp.org:123).
    #[serde(default)]
    pub ntp: Option<String>,
    /// The broker.
    pub broker: Broker,
    /// MQTT identity.
    #[serde(default)]
    pub mqtt: MqttIdentity,
    /// Trust anchors (the root), PEM.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The broker certificate's issuer (an intermediate), PEM, for firmware that
    /// anchors on the issuer instead of the root.
    #[serde(default)]
    pub issuer_pem: Option<String>,
    /// SHA-1 of the broker's leaf certificate, hex, for fingerprint pinning.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The broker's public key, PEM, for known-key pinning.
    #[serde(default)]
    pub known_key_pem: Option<String>,
    /// Client certificate, PEM.
    #[serde(default)]
    pub client_cert_pem: Option<String>,
    /// Client private key, PEM (secret: never logged).
    #[serde(default)]
    pub client_key_pem: Option<String>,
    /// Topics.
    pub topics: Topics,
    /// Milliseconds between telemetry publishes.
    #[serde(default = "default_interval")]
    pub publish_interval_ms: u64,
}

fn default_interval() -> u64 {
    5000
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("wifi", &self.wifi)
            .field("broker", &self.broker)
            .field("mqtt", &self.mqtt)
            .field("topics", &self.topics)
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// The settings compiled into the virtual release firmware: what runs when nobody
/// provisions it (black-box mode). Its CA is a real public root, so no lab
/// certificate can chain to it.
pub fn compiled_in() -> Settings {
    compiled_in_for(&Knobs::default())
}

/// The settings compiled into a virtual firmware built with `knobs`: the
/// release's, except for the broker it dials (`broker_host`) and the root it
/// trusts (`root_der`), which a test build may change (the sketch's
/// `HIL_BROKER_HOST` and `HIL_LAB_ROOT_HEADER`).
pub fn compiled_in_for(knobs: &Knobs) -> Settings {
    Settings {
        wifi: Wifi {
            ssid: "factory-ap".into(),
            password: "factory-secret".into(),
        },
        dns: None,
        ntp: None,
        broker: Broker {
            host: knobs.broker_host.clone(),
            port: 8883,
        },
        mqtt: MqttIdentity::default(),
        ca_pem: Some(
            knobs
                .root_der
                .pem()
                .unwrap_or_else(|| PRODUCTION_ROOT_PEM.into()),
        ),
        issuer_pem: None,
        fingerprint: None,
        known_key_pem: None,
        client_cert_pem: None,
        client_key_pem: None,
        topics: Topics {
            publish: "devices/telemetry".into(),
            subscribe: "devices/commands".into(),
        },
        publish_interval_ms: default_interval(),
    }
}

/// The production broker the release firmware is built for (the default of the
/// `broker_host` knob).
pub const COMPILED_BROKER_HOST: &str = "mqtt.example.com";

/// ISRG Root X1, the public root the release firmware trusts (public data).
pub const PRODUCTION_ROOT_PEM: &str = include_str!("production-root.pem");

/// Why a `PROV` line was refused (the text after `reason=`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// Not base64.
    #[error("bad-base64")]
    Base64,
    /// Not the expected JSON object (with serde's reason, secrets never included).
    #[error("bad-json:{0}")]
    Json(String),
}

/// Decodes the payload of a `PROV ` line.
pub fn parse(payload: &str) -> Result<Settings, ProvisionError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|_| ProvisionError::Base64)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde's message can quote input; keep only its category and position.
        let kind = match e.classify() {
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "missing-or-wrong-field",
            serde_json::error::Category::Eof => "truncated",
            serde_json::error::Category::Io => "io",
        };
        ProvisionError::Json(format!("{kind}@{}:{}", e.line(), e.column()))
    })
}

/// Encodes settings as the `PROV` line the harness writes (without line ending).
pub fn line(settings: &Settings) -> String {
    let json = serde_json::to_vec(settings).unwrap_or_default();
    format!(
        "PROV {}",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips() {
        let settings = compiled_in();
        let line = line(&settings);
        let payload = line.strip_prefix("PROV ").unwrap();
        assert_eq!(parse(payload).unwrap(), settings);
    }

    #[test]
    fn a_test_build_dials_its_own_name_and_trusts_its_own_root() {
        assert_eq!(Knobs::default().broker_host, COMPILED_BROKER_HOST);
        let release = compiled_in();
        assert_eq!(release.broker.host, COMPILED_BROKER_HOST);
        assert_eq!(release.ca_pem.as_deref(), Some(PRODUCTION_ROOT_PEM));

        let mut descriptor = crate::descriptor::Variant::Reference.descriptor();
        descriptor.set("broker_host", "MQTT.Team.Test.").unwrap();
        // The production root's DER stands in for a lab root here.
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                PRODUCTION_ROOT_PEM
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let root = crate::descriptor::CompiledRoot::from_der(der).unwrap();
        descriptor.set("root_der", &root.to_string()).unwrap();
        let test_build = compiled_in_for(&descriptor.knobs);
        assert_eq!(test_build.broker.host, "mqtt.team.test");
        // The PEM made from the DER is the production root's, line for line.
        assert_eq!(test_build.ca_pem.as_deref(), Some(PRODUCTION_ROOT_PEM));
        assert_eq!(test_build.topics, release.topics);
    }

    #[test]
    fn garbage_gets_a_reason_without_echoing_secrets() {
        assert_eq!(parse("***"), Err(ProvisionError::Base64));
        let secret = base64::engine::general_purpose::STANDARD
            .encode(r#"{"wifi":{"ssid":"x","password":"hunter2"}"#);
        let err = parse(&secret).unwrap_err().to_string();
        assert!(err.starts_with("bad-json:"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn debug_output_hides_passwords_and_keys() {
        let mut s = compiled_in();
        s.mqtt.password = Some("mqtt-secret".into());
        // Built in two parts so no key-looking text is committed.
        s.client_key_pem = Some(concat!("-----BEGIN ", "PRIVATE KEY-----").into());
        let text = format!("{s:?}");
        assert!(
            !text.contains("factory-secret")
                && !text.contains("mqtt-secret")
                && !text.contains("BEGIN PRIVATE")
        );
    }
}
