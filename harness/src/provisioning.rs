//! What the harness provisions a device with: the `PROV` line that points the
//! reference firmware at the lab.
//!
//! The device is told to use the lab's DNS and NTP, to connect to the presented
//! profile's host name on the lab's TLS port, and to trust the run's root. Pins a
//! developer would have copied from the production broker at build time (the
//! issuing intermediate, the leaf fingerprint, the server key) come from the
//! `valid` profile, whatever the broker presents now: that is what makes a renewed
//! certificate catch a pinning firmware.

use crate::lab::LabAddrs;
use crate::pki::{pem_bundle, Catalogue, PkiError, Profile, ProfileId};
use hil_contract::provision::{self, Broker, MqttIdentity, Settings, Topics, Wifi};

/// The Wi-Fi network virtual boards see.
pub const LAB_SSID: &str = "hil-lab";
/// Its passphrase (not a secret worth the name, but never logged all the same).
pub const LAB_WIFI_PASSWORD: &str = "hil-lab-passphrase";
/// The topic the harness provisions for telemetry.
pub const TELEMETRY_TOPIC: &str = "hil/telemetry";
/// The topic the harness provisions for commands.
pub const COMMAND_TOPIC: &str = "hil/commands";

/// Choices a scenario can make about provisioning.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// MQTT user name and password to provision.
    pub credentials: Option<(String, String)>,
    /// Whether to provision the client certificate and key.
    pub client_certificate: bool,
    /// MQTT client id (default: derived from the board).
    pub client_id: Option<String>,
    /// Milliseconds between telemetry publishes.
    pub publish_interval_ms: Option<u64>,
    /// The Wi-Fi network to join: SSID and passphrase (default: the lab's
    /// virtual access point, [`LAB_SSID`]).
    pub wifi: Option<(String, String)>,
}

/// The settings for a device talking to `lab`, which presents `presented`.
pub fn settings(
    lab: &LabAddrs,
    catalogue: &Catalogue,
    presented: &Profile,
    options: &ProvisionOptions,
) -> Result<Settings, PkiError> {
    let pins = catalogue.profile(ProfileId::Valid)?;
    let leaf = pins.broker_chain().first().ok_or(PkiError::EmptyChain {
        id: ProfileId::Valid,
    })?;
    let manifest = pins.manifest()?;
    let (username, password) = match &options.credentials {
        Some((u, p)) => (Some(u.clone()), Some(p.clone())),
        None => (None, None),
    };
    let client = presented.client_auth();
    Ok(Settings {
        wifi: match &options.wifi {
            Some((ssid, password)) => Wifi {
                ssid: ssid.clone(),
                password: password.clone(),
            },
            None => Wifi {
                ssid: LAB_SSID.into(),
                password: LAB_WIFI_PASSWORD.into(),
            },
        },
        dns: Some(lab.dns.to_string()),
        ntp: Some(format!("{}:{}", crate::pki::NTP_HOST, lab.ntp.port())),
        broker: Broker {
            host: presented.host().into(),
            port: lab.mqtt_tls.port(),
        },
        mqtt: MqttIdentity {
            client_id: options.client_id.clone().unwrap_or_default(),
            username,
            password,
        },
        ca_pem: Some(pem_bundle(presented.device_anchors())),
        issuer_pem: pins.broker_chain().get(1).map(|c| c.pem()),
        fingerprint: Some(hex::encode(leaf.sha1())),
        known_key_pem: Some(manifest.leaf.public_key_pem),
        client_cert_pem: options.client_certificate.then(|| client.device_cert.pem()),
        client_key_pem: options
            .client_certificate
            .then(|| client.device_key.expose().to_owned()),
        topics: Topics {
            publish: TELEMETRY_TOPIC.into(),
            subscribe: COMMAND_TOPIC.into(),
        },
        publish_interval_ms: options.publish_interval_ms.unwrap_or(1000),
    })
}

/// The line to write after `[prov] ready` (ends in CRLF).
pub fn line(settings: &Settings) -> String {
    format!("{}\r\n", provision::line(settings))
}

/// How a transcript shows a provisioning line: never its payload, which holds
/// passwords and keys.
pub fn redacted(line: &str) -> String {
    match line.trim_end().strip_prefix("PROV ") {
        Some(payload) => format!("PROV <redacted: {} bytes of provisioning>", payload.len()),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provisioning_line_never_shows_in_a_transcript() {
        let shown = redacted("PROV eyJ3aWZpIjp7InBhc3N3b3JkIjoic2VjcmV0In19\r\n");
        assert!(shown.starts_with("PROV <redacted"), "{shown}");
        assert!(!shown.contains("eyJ3"));
        assert_eq!(redacted("[boot] fw=x"), "[boot] fw=x");
    }
}
