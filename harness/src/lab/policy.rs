//! What each lab service does for one device, and the table that picks the policy
//! by the device's source address.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

use crate::pki::Profile;

/// A TLS protocol version the front can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// As the timeline and the firmware spell it: `TLS1.2`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS1.0",
            TlsVersion::Tls11 => "TLS1.1",
            TlsVersion::Tls12 => "TLS1.2",
            TlsVersion::Tls13 => "TLS1.3",
        }
    }

    /// The protocol version number on the wire.
    pub const fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version with this wire number, if it is one the front knows.
    pub const fn from_wire(wire: u16) -> Option<TlsVersion> {
        match wire {
            0x0301 => Some(TlsVersion::Tls10),
            0x0302 => Some(TlsVersion::Tls11),
            0x0303 => Some(TlsVersion::Tls12),
            0x0304 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of TLS versions.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsVersions(u8);

impl TlsVersions {
    /// Exactly one version.
    pub const fn only(version: TlsVersion) -> TlsVersions {
        TlsVersions(version.bit())
    }

    /// What a current broker accepts: TLS 1.2 and 1.3.
    pub const MODERN: TlsVersions = TlsVersions(TlsVersion::Tls12.bit() | TlsVersion::Tls13.bit());

    /// The set with `version` added.
    pub const fn with(self, version: TlsVersion) -> TlsVersions {
        TlsVersions(self.0 | version.bit())
    }

    /// Whether `version` is allowed.
    pub const fn contains(self, version: TlsVersion) -> bool {
        self.0 & version.bit() != 0
    }

    /// The allowed versions, oldest first.
    pub fn iter(self) -> impl Iterator<Item = TlsVersion> {
        TlsVersion::ALL
            .into_iter()
            .filter(move |v| self.contains(*v))
    }
}

impl fmt::Debug for TlsVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Whether the front asks the device for a client certificate, and which CA it
/// verifies it against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCertPolicy {
    /// No client certificate is requested.
    NotRequested,
    /// Required, verified against the profile's client CA.
    Required,
    /// Required, verified against a CA that did not issue the device's certificate
    /// (client-cert-wrong-ca): every device certificate is refused.
    RequiredFromForeignCa,
}

/// What the front does with the device's max_fragment_length extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MflnPolicy {
    /// OpenSSL honours it: every record the front sends fits the asked size.
    Honoured,
    /// The extension is never acknowledged and records go out at full size (up to
    /// 16 KiB): served by rustls, which does not implement it. A device with a
    /// shrunk receive buffer fails on the first large encrypted record (BearSSL 6).
    Ignored,
}

/// A deliberate fault during the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeFault {
    /// No fault.
    None,
    /// Forward the ServerHello, then nothing more: the device waits for the rest of
    /// the flight.
    StallAfterHello,
    /// Forward the ServerHello, then close the connection.
    CloseMidHandshake,
}

/// The TLS front's policy for one device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsPolicy {
    /// Versions the front accepts.
    pub versions: TlsVersions,
    /// Refuse (alert unrecognized_name) a ClientHello without SNI.
    pub sni_required: bool,
    /// Client certificate requirement.
    pub client_cert: ClientCertPolicy,
    /// What happens to max_fragment_length.
    pub mfln: MflnPolicy,
    /// A deliberate fault.
    pub fault: HandshakeFault,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        TlsPolicy {
            versions: TlsVersions::MODERN,
            sni_required: false,
            client_cert: ClientCertPolicy::NotRequested,
            mfln: MflnPolicy::Honoured,
            fault: HandshakeFault::None,
        }
    }
}

/// A user name and password the broker requires. The password never appears in
/// `Debug` output, events or reports.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password. Secret: never log it.
    pub fn expose_password(&self) -> &str {
        &self.password
    }

    /// Whether a CONNECT's user name and password match, compared in time that does
    /// not depend on where they differ.
    pub fn matches(&self, username: Option<&str>, password: Option<&[u8]>) -> bool {
        let same = |a: &[u8], b: &[u8]| {
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        let user_ok = username.is_some_and(|u| same(u.as_bytes(), self.username.as_bytes()));
        let pass_ok = password.is_some_and(|p| same(p, self.password.as_bytes()));
        user_ok & pass_ok
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// What the broker does with a CONNECT whose credentials are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectPolicy {
    /// Pass it to the broker.
    Accept,
    /// Answer CONNACK 5 (not authorised) and close.
    NotAuthorized,
    /// Never answer: the CONNECT is swallowed and the connection held open.
    NoConnack,
}

/// The MQTT layer's policy for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttPolicy {
    /// Credentials the device must present (CONNACK 4 otherwise).
    pub credentials: Option<Credentials>,
    /// What happens to an acceptable CONNECT.
    pub connect: ConnectPolicy,
}

impl Default for MqttPolicy {
    fn default() -> Self {
        MqttPolicy {
            credentials: None,
            connect: ConnectPolicy::Accept,
        }
    }
}

/// What the NTP server reports to one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NtpPolicy {
    /// The lab clock.
    #[default]
    Exact,
    /// The lab clock plus a signed offset.
    Skewed(Duration),
    /// Always this instant.
    Fixed(OffsetDateTime),
    /// No answer at all.
    Silent,
}

/// How the DNS server answers one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsMode {
    /// The lab's address for the lab's names, NXDOMAIN for anything else.
    #[default]
    Answer,
    /// NXDOMAIN for every name.
    NxDomain,
    /// No answer at all.
    Silent,
}

/// The DNS server's policy for one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsPolicy {
    /// The general answer.
    pub mode: DnsMode,
    /// Names answered NXDOMAIN even in [`DnsMode::Answer`] (lower case, no
    /// trailing dot).
    pub unresolved: BTreeSet<String>,
}

/// Everything the lab does for one device.
#[derive(Debug, Clone, Default)]
pub struct DevicePolicy {
    /// The certificate profile presented to this device; `None`: the lab's own.
    pub profile: Option<Arc<Profile>>,
    /// The TLS front.
    pub tls: TlsPolicy,
    /// The MQTT layer.
    pub mqtt: MqttPolicy,
    /// The NTP server.
    pub ntp: NtpPolicy,
    /// The DNS server.
    pub dns: DnsPolicy,
}

impl DevicePolicy {
    /// This policy with a broker policy of the catalogue applied.
    pub fn with(mut self, policy: BrokerPolicy) -> DevicePolicy {
        policy.apply(&mut self);
        self
    }

    /// The policy as structured JSON for manifests, the password never written.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let ntp = match self.ntp {
            NtpPolicy::Exact => json!({ "mode": "exact" }),
            NtpPolicy::Skewed(by) => {
                json!({ "mode": "skewed", "skew_seconds": by.whole_seconds() })
            }
            NtpPolicy::Fixed(at) => json!({ "mode": "fixed", "time": at.format(rfc3339).ok() }),
            NtpPolicy::Silent => json!({ "mode": "silent" }),
        };
        json!({
            "profile": self.profile.as_ref().map(|p| p.id().as_str()),
            "tls": {
                "versions": self.tls.versions.iter().map(TlsVersion::as_str).collect::<Vec<_>>(),
                "sni_required": self.tls.sni_required,
                "client_certificate": match self.tls.client_cert {
                    ClientCertPolicy::NotRequested => "not_requested",
                    ClientCertPolicy::Required => "required",
                    ClientCertPolicy::RequiredFromForeignCa => "required_from_foreign_ca",
                },
                "max_fragment_length": match self.tls.mfln {
                    MflnPolicy::Honoured => "honoured",
                    MflnPolicy::Ignored => "ignored",
                },
                "fault": match self.tls.fault {
                    HandshakeFault::None => "none",
                    HandshakeFault::StallAfterHello => "stall_after_hello",
                    HandshakeFault::CloseMidHandshake => "close_mid_handshake",
                },
            },
            "mqtt": {
                "credentials": self.mqtt.credentials.as_ref().map(|c| json!({
                    "username": c.username,
                    "password": "<redacted>",
                })),
                "connect": match self.mqtt.connect {
                    ConnectPolicy::Accept => "accept",
                    ConnectPolicy::NotAuthorized => "not_authorized",
                    ConnectPolicy::NoConnack => "no_connack",
                },
            },
            "ntp": ntp,
            "dns": {
                "mode": match self.dns.mode {
                    DnsMode::Answer => "answer",
                    DnsMode::NxDomain => "nxdomain",
                    DnsMode::Silent => "silent",
                },
                "unresolved": self.dns.unresolved,
            },
        })
    }
}

macro_rules! broker_policies {
    ($( $variant:ident => $name:literal, $doc:literal; )*) => {
        /// A broker policy of the catalogue, by the name features and the CLI use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum BrokerPolicy {
            $( #[doc = $doc] $variant, )*
        }

        impl BrokerPolicy {
            /// Every policy, in catalogue order.
            pub const ALL: &'static [BrokerPolicy] = &[$(BrokerPolicy::$variant,)*];

            /// The fixed name.
            pub const fn as_str(self) -> &'static str {
                match self { $(BrokerPolicy::$variant => $name,)* }
            }

            /// What it does.
            pub const fn description(self) -> &'static str {
                match self { $(BrokerPolicy::$variant => $doc,)* }
            }
        }
    };
}

broker_policies! {
    SniRequired => "sni-required", "refuse a ClientHello without SNI (alert unrecognized_name)";
    ClientCertRequired => "client-cert-required", "require a client certificate from the profile's client CA";
    ClientCertWrongCa => "client-cert-wrong-ca", "require a client certificate, verified against a CA that did not issue it";
    Tls13Only => "tls13-only", "accept TLS 1.3 only";
    Tls10Only => "tls10-only", "accept TLS 1.0 only";
    MflnIgnored => "mfln-ignored", "never acknowledge max_fragment_length; send full-size records (rustls)";
    MflnHonoured => "mfln-honoured", "honour max_fragment_length (the default)";
    StallAfterHello => "stall-after-hello", "send the ServerHello, then nothing more";
    CloseMidHandshake => "close-mid-handshake", "send the ServerHello, then close";
    MqttBadCredentials => "mqtt-bad-credentials", "require credentials the device was not given (CONNACK 4)";
    MqttNotAuthorized => "mqtt-not-authorized", "answer CONNACK 5";
    NoConnack => "no-connack", "never answer CONNECT";
    DnsNxdomain => "dns-nxdomain", "answer NXDOMAIN for every name";
}

/// The user name mqtt-bad-credentials requires; the password is one no device is
/// provisioned with.
pub const BAD_CREDENTIALS_USER: &str = "hil-lab";

impl BrokerPolicy {
    /// Changes `policy` the way this broker policy says.
    pub fn apply(self, policy: &mut DevicePolicy) {
        match self {
            BrokerPolicy::SniRequired => policy.tls.sni_required = true,
            BrokerPolicy::ClientCertRequired => {
                policy.tls.client_cert = ClientCertPolicy::Required;
            }
            BrokerPolicy::ClientCertWrongCa => {
                policy.tls.client_cert = ClientCertPolicy::RequiredFromForeignCa;
            }
            BrokerPolicy::Tls13Only => {
                policy.tls.versions = TlsVersions::only(TlsVersion::Tls13);
            }
            BrokerPolicy::Tls10Only => {
                policy.tls.versions = TlsVersions::only(TlsVersion::Tls10);
            }
            BrokerPolicy::MflnIgnored => policy.tls.mfln = MflnPolicy::Ignored,
            BrokerPolicy::MflnHonoured => policy.tls.mfln = MflnPolicy::Honoured,
            BrokerPolicy::StallAfterHello => policy.tls.fault = HandshakeFault::StallAfterHello,
            BrokerPolicy::CloseMidHandshake => {
                policy.tls.fault = HandshakeFault::CloseMidHandshake;
            }
            BrokerPolicy::MqttBadCredentials => {
                policy.mqtt.credentials = Some(Credentials::new(
                    BAD_CREDENTIALS_USER,
                    "no device is provisioned with this password",
                ));
            }
            BrokerPolicy::MqttNotAuthorized => policy.mqtt.connect = ConnectPolicy::NotAuthorized,
            BrokerPolicy::NoConnack => policy.mqtt.connect = ConnectPolicy::NoConnack,
            BrokerPolicy::DnsNxdomain => policy.dns.mode = DnsMode::NxDomain,
        }
    }
}

impl fmt::Display for BrokerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broker policy name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("unknown broker policy `{given}`")]
#[diagnostic(
    code(hil::lab::unknown_policy),
    help("valid policies: {}", valid_policies())
)]
pub struct UnknownPolicy {
    /// What was asked for.
    pub given: String,
}

fn valid_policies() -> String {
    BrokerPolicy::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for BrokerPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrokerPolicy::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPolicy {
                given: s.to_owned(),
            })
    }
}

/// The per-device policy table: a default for devices nobody configured, and one
/// entry per device address. Cloning gives another handle to the same table, so
/// the runner can change a device's policy while the services run.
#[derive(Debug, Clone, Default)]
pub struct PolicyTable {
    inner: Arc<RwLock<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    default: DevicePolicy,
    devices: HashMap<IpAddr, DevicePolicy>,
}

impl PolicyTable {
    /// A table whose default is `default`.
    pub fn new(default: DevicePolicy) -> PolicyTable {
        PolicyTable {
            inner: Arc::new(RwLock::new(Table {
                default,
                devices: HashMap::new(),
            })),
        }
    }

    /// The policy for the device at `ip` (the default when it has none).
    pub fn get(&self, ip: IpAddr) -> DevicePolicy {
        let table = match self.inner.read() {
            Ok(table) => table,
            Err(poisoned) => poisoned.into_inner(),
        };
        table.devices.get(&ip).unwrap_or(&table.default).clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        match self.inner.write() {
            Ok(table) => table,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Sets the policy of the device at `ip`; takes effect for its next
    /// connection, query or request.
    pub fn set(&self, ip: IpAddr, policy: DevicePolicy) {
        self.write().devices.insert(ip, policy);
    }

    /// Forgets the device at `ip`: it gets the default again.
    pub fn clear(&self, ip: IpAddr) {
        self.write().devices.remove(&ip);
    }

    /// Sets the default policy.
    pub fn set_default(&self, policy: DevicePolicy) {
        self.write().default = policy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip_and_unknown_ones_list_the_valid() {
        for p in BrokerPolicy::ALL {
            assert_eq!(p.as_str().parse::<BrokerPolicy>(), Ok(*p));
        }
        let err = "sni-please".parse::<BrokerPolicy>().unwrap_err();
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(
            help.contains("sni-required") && help.contains("dns-nxdomain"),
            "{help}"
        );
    }

    #[test]
    fn devices_get_their_own_policy_and_others_the_default() {
        let table = PolicyTable::new(DevicePolicy::default());
        let a: IpAddr = "127.0.1.1".parse().unwrap();
        let b: IpAddr = "127.0.1.2".parse().unwrap();
        table.set(a, DevicePolicy::default().with(BrokerPolicy::Tls13Only));
        assert_eq!(
            table.get(a).tls.versions,
            TlsVersions::only(TlsVersion::Tls13)
        );
        assert_eq!(table.get(b).tls.versions, TlsVersions::MODERN);
        table.clear(a);
        assert_eq!(table.get(a).tls.versions, TlsVersions::MODERN);
    }

    #[test]
    fn credentials_compare_both_fields_and_never_print_the_password() {
        let c = Credentials::new("user", "s3cret");
        assert!(c.matches(Some("user"), Some(b"s3cret")));
        assert!(!c.matches(Some("user"), Some(b"s3cre")));
        assert!(!c.matches(None, Some(b"s3cret")));
        assert!(!c.matches(Some("user"), None));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
