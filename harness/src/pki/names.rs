//! The names a catalogue issues certificates for: the lab's own `broker.hil.test`,
//! or the name a team's firmware dials.

use std::fmt;
use std::str::FromStr;

use super::{PkiError, BROKER_HOST};

/// The longest name DNS allows (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
/// What `large-chain` puts in front of the broker name for its extra SANs.
const LARGE_CHAIN_PREFIX: &str = "node-00.";

/// A DNS name the firmware dials, checked so every profile can be issued for it.
///
/// Lower case, no trailing dot, at least three labels: `wildcard-mismatch`
/// presents a wildcard two labels above the name (`*.com` for
/// `mqtt.example.com`), which needs a label left over.
///
/// ```
/// use hil::pki::BrokerName;
///
/// let name: BrokerName = "MQTT.Example.com.".parse()?;
/// assert_eq!(name.as_str(), "mqtt.example.com");
/// assert!("example.com".parse::<BrokerName>().is_err());
/// assert!("192.168.1.10".parse::<BrokerName>().is_err());
/// # Ok::<(), hil::pki::PkiError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerName(String);

impl BrokerName {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<BrokerName, PkiError> {
        let bad = |reason: String| PkiError::BrokerName {
            name: name.to_owned(),
            reason,
        };
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if trimmed.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if trimmed.len() > MAX_NAME - LARGE_CHAIN_PREFIX.len() {
            return Err(bad(format!(
                "it is {} characters long; at most {} leave room for the `{}...` names the large-chain profile adds",
                trimmed.len(),
                MAX_NAME - LARGE_CHAIN_PREFIX.len(),
                LARGE_CHAIN_PREFIX
            )));
        }
        if trimmed.parse::<std::net::IpAddr>().is_ok() {
            return Err(bad(
                "it is an IP address; certificates here are issued for a name the firmware resolves".into(),
            ));
        }
        let labels: Vec<&str> = trimmed.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err(bad("it has an empty label (two dots in a row)".into()));
            }
            if label.len() > 63 {
                return Err(bad(format!(
                    "the label `{label}` is longer than 63 characters"
                )));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(bad(format!(
                    "the label `{label}` holds `{c}`; labels are letters, digits and hyphens"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad(format!(
                    "the label `{label}` starts or ends with a hyphen"
                )));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad("its last label is all digits".into()));
        }
        if labels.len() < 3 {
            return Err(bad(format!(
                "it has {} label{}; wildcard-mismatch presents a wildcard two labels above the name, so it needs at least three",
                labels.len(),
                if labels.len() == 1 { "" } else { "s" }
            )));
        }
        Ok(BrokerName(trimmed.to_ascii_lowercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BrokerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for BrokerName {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerName::new(s)
    }
}

/// Every name the profiles use, derived from one broker name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// The name the device dials and the good leaves carry.
    pub broker: String,
    /// `wrong-san`'s SAN: a sibling of the broker name.
    pub wrong_san: String,
    /// The host `wildcard-mismatch` is presented for.
    pub wildcard_host: String,
    /// Its wildcard SAN, two labels above `wildcard_host`.
    pub wildcard_san: String,
}

impl Names {
    /// The lab's own names: `broker.hil.test`, and for `wildcard-mismatch` the
    /// reference firmware is provisioned with `mqtt.broker.hil.test` under
    /// `*.hil.test` (CATALOGUE.md).
    pub fn lab() -> Names {
        Names {
            broker: BROKER_HOST.to_owned(),
            wrong_san: "other.hil.test".to_owned(),
            wildcard_host: format!("mqtt.{BROKER_HOST}"),
            wildcard_san: "*.hil.test".to_owned(),
        }
    }

    /// A team's name: every profile is presented for exactly the name the
    /// firmware dials, so a firmware that cannot be told another name is judged
    /// by each of them.
    pub fn for_broker(name: &BrokerName) -> Names {
        let name = name.as_str();
        // BrokerName guarantees at least three labels.
        let (first, parent) = name.split_once('.').unwrap_or((name, name));
        let grandparent = parent.split_once('.').map_or(parent, |(_, rest)| rest);
        let sibling = if first == "other" { "another" } else { "other" };
        Names {
            broker: name.to_owned(),
            wrong_san: format!("{sibling}.{parent}"),
            wildcard_host: name.to_owned(),
            wildcard_san: format!("*.{grandparent}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match BrokerName::new(name) {
            Err(PkiError::BrokerName { reason, .. }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn names_that_are_no_dns_names_are_refused_with_the_reason() {
        assert!(reason("").contains("empty"));
        assert!(reason("mqtt..example.com").contains("empty label"));
        assert!(reason("mqtt_1.example.com").contains("`_`"));
        assert!(reason("-mqtt.example.com").contains("hyphen"));
        assert!(reason("10.0.0.1").contains("IP address"));
        assert!(reason("mqtt.example.123").contains("all digits"));
        assert!(reason("example.com").contains("at least three"));
        assert!(reason(&format!("{}.example.com", "a".repeat(64))).contains("63"));
        let long = format!("{}.info", ["abcdefghij"; 22].join(".")); // 246 characters
        assert!(reason(&long).contains("large-chain"));
    }

    #[test]
    fn a_broker_name_is_normalised() {
        let name = BrokerName::new("MQTT.Example.COM.").unwrap();
        assert_eq!(name.as_str(), "mqtt.example.com");
    }

    #[test]
    fn derived_names_keep_each_profile_wrong_in_the_same_way() {
        let names = Names::for_broker(&BrokerName::new("mqtt.example.com").unwrap());
        assert_eq!(names.broker, "mqtt.example.com");
        assert_eq!(names.wrong_san, "other.example.com");
        // The dialled name stays two labels below the wildcard's base.
        assert_eq!(names.wildcard_host, "mqtt.example.com");
        assert_eq!(names.wildcard_san, "*.com");
        let other = Names::for_broker(&BrokerName::new("other.example.com").unwrap());
        assert_ne!(other.wrong_san, other.broker);
        let lab = Names::lab();
        assert_eq!(
            (lab.wildcard_host.as_str(), lab.wildcard_san.as_str()),
            ("mqtt.broker.hil.test", "*.hil.test")
        );
    }
}
