//! The Gherkin step vocabulary of STEPS.md, parsed into typed steps.
//!
//! The phrasings are a public interface: users write features with them, so each
//! works exactly as written (quotes, units and all). Every step text is parsed
//! into a [`Step`] before anything runs, so a typo is reported with its file and
//! line instead of failing halfway through a run.
//!
//! ```
//! use hil::runner::steps::{parse, Step};
//!
//! let step = parse("the device reports a TLS failure with code 56")?;
//! assert_eq!(step, Step::TlsFailureCode(56));
//! assert!(parse("the device is happy").is_err());
//! # Ok::<(), hil::runner::steps::StepError>(())
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use regex::{Captures, Regex};
use time::OffsetDateTime;

use crate::duration::parse_duration;
use crate::pki::ProfileId;

/// A TLS version a broker can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlyTls {
    /// TLS 1.0.
    V10,
    /// TLS 1.1.
    V11,
    /// TLS 1.2.
    V12,
    /// TLS 1.3.
    V13,
}

/// How the broker publishes a message of the harness: its QoS and retain flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// 0, 1 or 2 (1 unless the step says).
    pub qos: Qos,
    /// The broker keeps it for later subscribers.
    pub retain: bool,
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            qos: Qos::AtLeastOnce,
            retain: false,
        }
    }
}

/// An MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// 0.
    AtMostOnce,
    /// 1.
    AtLeastOnce,
    /// 2.
    ExactlyOnce,
}

impl Qos {
    /// Its number on the wire.
    pub fn level(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }

    fn from_level(level: &str) -> Result<Qos, String> {
        match level {
            "0" => Ok(Qos::AtMostOnce),
            "1" => Ok(Qos::AtLeastOnce),
            "2" => Ok(Qos::ExactlyOnce),
            other => Err(format!(
                "QoS `{other}` does not exist: MQTT has QoS 0, 1 and 2"
            )),
        }
    }
}

/// One step, typed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Step {
    /// `a virtual board running firmware "<variant or image path>"`
    VirtualBoardRunning(String),
    /// `the board under test`
    BoardUnderTest,
    /// `the board is flashed with "<image path>"` (Given and When)
    FlashedWith(String),
    /// `the board is not provisioned`
    NotProvisioned,
    /// `the device uses log profile "<name>"`
    UsesLogProfile(String),
    /// `the device is provisioned with username "<user>" and password "<password>"`
    ProvisionedCredentials {
        /// User name.
        username: String,
        /// Password (secret).
        password: String,
    },
    /// `the broker presents the "<certificate profile>" certificate`
    BrokerPresents(ProfileId),
    /// `the broker requires SNI`
    BrokerRequiresSni,
    /// `the broker requires a client certificate`
    BrokerRequiresClientCert,
    /// `the broker trusts client certificates from another CA`
    BrokerTrustsOtherClientCa,
    /// `the broker accepts only TLS <1.0|1.1|1.2|1.3>`
    BrokerOnlyTls(OnlyTls),
    /// `the broker ignores the max fragment length extension`
    BrokerIgnoresMfln,
    /// `the broker requires username "<user>" and password "<password>"`
    BrokerRequiresCredentials {
        /// User name.
        username: String,
        /// Password (secret).
        password: String,
    },
    /// `the broker does not authorise the device`
    BrokerNotAuthorized,
    /// `the broker stalls after the ServerHello`
    BrokerStallsAfterHello,
    /// `the broker closes the connection during the handshake`
    BrokerClosesMidHandshake,
    /// `the broker does not answer CONNECT`
    BrokerNoConnack,
    /// `the NTP server reports a time skewed by <duration>`
    NtpSkew(time::Duration),
    /// `the NTP server reports the time "<RFC 3339 timestamp>"`
    NtpFixed(OffsetDateTime),
    /// `the NTP server does not answer`
    NtpSilent,
    /// `the DNS server does not resolve "<host>"`
    DnsDoesNotResolve(String),
    /// `the DNS server resolves "<host>" to the lab`
    DnsResolvesToLab(String),
    /// `the board boots`
    Boots,
    /// `the broker publishes "<payload>" to "<topic>"` (optionally `with QoS <n>`,
    /// `retained` or `not retained`)
    BrokerPublishes {
        /// Payload text.
        payload: String,
        /// Topic.
        topic: String,
        /// How it is published.
        delivery: Delivery,
    },
    /// `the broker publishes a <n>-byte message to "<topic>"` (with the same options)
    BrokerPublishesSized {
        /// Payload length in bytes.
        bytes: usize,
        /// Topic.
        topic: String,
        /// How it is published.
        delivery: Delivery,
    },
    /// `the broker drops the device's connection`
    BrokerDrops,
    /// `the broker restarts`
    BrokerRestarts,
    /// `<duration> pass`
    Pass(Duration),
    /// `the serial output contains "<text>" within <duration>`
    SerialContains {
        /// Text to find.
        text: String,
        /// Deadline.
        within: Duration,
    },
    /// `the serial output matches /<regex>/ within <duration>`
    SerialMatches {
        /// Pattern.
        pattern: String,
        /// Deadline.
        within: Duration,
    },
    /// `the serial output never contains "<text>"`
    SerialNeverContains(String),
    /// `the device reports a TLS failure with code <n>`
    TlsFailureCode(i64),
    /// `the device reports MQTT state <n>` (optionally `within <duration>`)
    MqttState {
        /// PubSubClient state.
        state: i64,
        /// Deadline; the scenario's settle window when absent.
        within: Option<Duration>,
    },
    /// `the board does not reboot`
    DoesNotReboot,
    /// `the board reboots within <duration>`
    RebootsWithin(Duration),
    /// `the TLS handshake succeeds within <duration>`
    HandshakeSucceeds(Duration),
    /// `the TLS handshake does not complete`
    HandshakeDoesNotComplete,
    /// `the device starts a TLS handshake within <duration>`
    StartsHandshake(Duration),
    /// `the device sent SNI "<host>"`
    SentSni(String),
    /// `the device sent no SNI`
    SentNoSni,
    /// `the device offered a max fragment length of <n> bytes`
    OfferedMfln(u32),
    /// `the device connects to the broker within <duration>` (CONNACK 0)
    ConnectsWithin(Duration),
    /// `the device sends an MQTT CONNECT within <duration>` (the attempt)
    SendsConnect(Duration),
    /// `the device never completes an MQTT connection`
    NeverConnects,
    /// `the device publishes to "<topic>" within <duration>`
    PublishesTo {
        /// Topic.
        topic: String,
        /// Deadline.
        within: Duration,
    },
    /// `the device publishes a message matching /<regex>/ to "<topic>" within <duration>`
    PublishesMatching {
        /// Payload pattern.
        pattern: String,
        /// Topic.
        topic: String,
        /// Deadline.
        within: Duration,
    },
    /// `the device publishes at most <n> messages per <duration>`
    PublishesAtMost {
        /// Limit.
        count: u32,
        /// Window.
        per: Duration,
    },
    /// `the device opens at most <n> connections per <duration>`
    OpensAtMost {
        /// Limit.
        count: u32,
        /// Window.
        per: Duration,
    },
    /// `the device's publishes to "<topic>" are <not retained|retained>`
    PublishesRetained {
        /// Topic.
        topic: String,
        /// Whether every publish must carry the retain flag.
        retained: bool,
    },
    /// `the device's publishes to "<topic>" use QoS <0|1|2>`
    PublishesWithQos {
        /// Topic.
        topic: String,
        /// The QoS every publish must use.
        qos: Qos,
    },
    /// `the device subscribes to "<topic>" within <duration>`
    SubscribesTo {
        /// Topic.
        topic: String,
        /// Deadline.
        within: Duration,
    },
    /// `the device asked for the time within <duration>`
    AskedForTime(Duration),
    /// `the device looks up "<host>" within <duration>`
    LooksUp {
        /// The name.
        host: String,
        /// Deadline.
        within: Duration,
    },
    /// `the transcript matches the snapshot`
    TranscriptMatchesSnapshot,
}

impl Step {
    /// Whether the step acts on the board or the lab (a When): "within"
    /// deadlines of the Then steps after it count from it.
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Step::Boots
                | Step::FlashedWith(_)
                | Step::BrokerPublishes { .. }
                | Step::BrokerPublishesSized { .. }
                | Step::BrokerDrops
                | Step::BrokerRestarts
                | Step::Pass(_)
        )
    }

    /// Why this step makes no sense when the device is never provisioned (it
    /// runs its compiled-in settings and reads no `PROV` line), or `None` when
    /// it does. Such a step would decide its scenario's verdict by what the
    /// harness could not give the device, not by the firmware.
    pub fn needs_provisioning(&self) -> Option<&'static str> {
        match self {
            Step::ProvisionedCredentials { .. } => Some(
                "the credentials it names reach the device only in the PROV line; \
                 unprovisioned, the device sends its compiled-in ones",
            ),
            Step::BrokerRequiresClientCert | Step::BrokerTrustsOtherClientCa => Some(
                "the device's client certificate is the lab's, given in the PROV line; \
                 unprovisioned, the device has none the lab issued, so the handshake \
                 fails whatever the firmware does",
            ),
            _ => None,
        }
    }
}

/// The keyword a phrase is documented under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Arrange: the board, its firmware, the lab.
    Given,
    /// Act.
    When,
    /// Assert.
    Then,
}

/// A step text that is not in the vocabulary, or has a bad argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// No phrase matches.
    #[error("unknown step `{text}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        /// The step text.
        text: String,
        /// The closest phrase, when one is close.
        suggestion: Option<String>,
    },
    /// The phrase matched but an argument is invalid.
    #[error("in step `{text}`: {problem}")]
    BadArgument {
        /// The step text.
        text: String,
        /// What is wrong.
        problem: String,
    },
}

type Build = fn(&Captures<'_>) -> Result<Step, String>;

/// One phrase of the vocabulary.
pub struct Phrase {
    /// Documented keyword.
    pub kind: Kind,
    /// The phrase as STEPS.md writes it.
    pub doc: &'static str,
    /// What it does.
    pub help: &'static str,
    pattern: &'static str,
    build: Build,
}

fn text(c: &Captures<'_>, name: &str) -> String {
    c.name(name)
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default()
}

fn duration(c: &Captures<'_>, name: &str) -> Result<Duration, String> {
    let given = text(c, name);
    let d = parse_duration(&given).map_err(|e| format!("{e}; {}", DURATION_HELP))?;
    if d.is_negative() {
        return Err(format!(
            "`{given}` is negative; a wait or deadline must be positive"
        ));
    }
    Ok(Duration::from_millis(
        d.whole_milliseconds().min(u64::MAX as i128) as u64,
    ))
}

/// The QoS and retain flag a publish step states (QoS 1, not retained, unless it says).
fn delivery(c: &Captures<'_>) -> Result<Delivery, String> {
    let qos = match c.name("q") {
        Some(q) => Qos::from_level(q.as_str())?,
        None => Qos::AtLeastOnce,
    };
    Ok(Delivery {
        qos,
        retain: c.name("r").is_some_and(|r| r.as_str() == "retained"),
    })
}

/// The window of a rate limit: a window of no length holds nothing, so a
/// limit over it could never fail.
fn window(c: &Captures<'_>, name: &str) -> Result<Duration, String> {
    let d = duration(c, name)?;
    if d.is_zero() {
        return Err(format!(
            "`{}` is an empty window: no rate can exceed a limit over no time; give a window such as `10 s`",
            text(c, name)
        ));
    }
    Ok(d)
}

fn signed(c: &Captures<'_>, name: &str) -> Result<time::Duration, String> {
    parse_duration(&text(c, name)).map_err(|e| format!("{e}; {DURATION_HELP}"))
}

fn number<T: std::str::FromStr>(c: &Captures<'_>, name: &str) -> Result<T, String> {
    let given = text(c, name);
    given
        .parse()
        .map_err(|_| format!("`{given}` is not a valid number"))
}

fn regex_arg(c: &Captures<'_>, name: &str) -> Result<String, String> {
    let pattern = text(c, name);
    Regex::new(&pattern)
        .map_err(|e| format!("/{pattern}/ is not a valid regular expression: {e}"))?;
    Ok(pattern)
}

const DURATION_HELP: &str = "durations look like `500 ms`, `20 s`, `2 min`, `-2 days`, `10 years`";

// The quoted argument allows escaped quotes inside.
const Q: &str = r#""(?P<%>(?:[^"\\]|\\.)*)""#;

macro_rules! phrase {
    ($kind:ident, $doc:literal, $help:literal, $pattern:literal, $build:expr) => {
        Phrase {
            kind: Kind::$kind,
            doc: $doc,
            help: $help,
            pattern: $pattern,
            build: $build,
        }
    };
}

/// Every phrase, in STEPS.md order (extensions marked in their help).
pub fn vocabulary() -> &'static [Phrase] {
    static PHRASES: OnceLock<Vec<Phrase>> = OnceLock::new();
    PHRASES.get_or_init(|| {
        vec![
            phrase!(Given, r#"a virtual board running firmware "<variant or image path>""#,
                "A virtual board flashed with a firmware variant (see `hil vfirmware list`) or an image file.",
                r#"^a virtual board running firmware Q(fw)$"#, |c| Ok(Step::VirtualBoardRunning(text(c, "fw")))),
            phrase!(Given, "the board under test",
                "The board chosen on the command line (`--board`): a port, an rfc2217:// URL or `virtual`.",
                r#"^the board under test$"#, |_| Ok(Step::BoardUnderTest)),
            phrase!(Given, r#"the board is flashed with "<image path>""#,
                "Flashes an image (relative paths from the working directory) before booting. Also a When.",
                r#"^the board is flashed with Q(image)$"#, |c| Ok(Step::FlashedWith(text(c, "image")))),
            phrase!(Given, "the board is not provisioned",
                "Black-box mode: the firmware runs with its compiled-in settings.",
                r#"^the board is not provisioned$"#, |_| Ok(Step::NotProvisioned)),
            phrase!(Given, r#"the device uses log profile "<name>""#,
                "Reads the serial output through a log profile (fixtures/log-profiles/<name>.toml or a path).",
                r#"^the device uses log profile Q(name)$"#, |c| Ok(Step::UsesLogProfile(text(c, "name")))),
            phrase!(Given, r#"the device is provisioned with username "<user>" and password "<password>""#,
                "Overrides the MQTT credentials provisioned (by default: whatever the broker requires).",
                r#"^the device is provisioned with username Q(user) and password Q(pass)$"#,
                |c| Ok(Step::ProvisionedCredentials { username: text(c, "user"), password: text(c, "pass") })),
            phrase!(Given, r#"the broker presents the "<certificate profile>" certificate"#,
                "The certificate profile the TLS front presents to this device (see `hil pki list`).",
                r#"^the broker presents the Q(profile) certificate$"#,
                |c| text(c, "profile").parse().map(Step::BrokerPresents).map_err(|e: crate::pki::UnknownProfile| {
                    let ids: Vec<&str> = ProfileId::ALL.iter().map(|p| p.as_str()).collect();
                    format!("{e}; profiles: {}", ids.join(", "))
                })),
            phrase!(Given, "the broker requires SNI",
                "The front refuses a ClientHello without server_name (alert unrecognized_name).",
                r#"^the broker requires SNI$"#, |_| Ok(Step::BrokerRequiresSni)),
            phrase!(Given, "the broker requires a client certificate",
                "Mutual TLS: the device must present a certificate from the lab's client CA (provisioned by default).",
                r#"^the broker requires a client certificate$"#, |_| Ok(Step::BrokerRequiresClientCert)),
            phrase!(Given, "the broker trusts client certificates from another CA",
                "Extension: mutual TLS against a CA that did not issue the device's certificate.",
                r#"^the broker trusts client certificates from another CA$"#, |_| Ok(Step::BrokerTrustsOtherClientCa)),
            phrase!(Given, "the broker accepts only TLS <1.0|1.1|1.2|1.3>",
                "Limits the front to one protocol version.",
                r#"^the broker accepts only TLS (?P<v>1\.[0-3])$"#, |c| Ok(Step::BrokerOnlyTls(match text(c, "v").as_str() {
                    "1.0" => OnlyTls::V10, "1.1" => OnlyTls::V11, "1.2" => OnlyTls::V12, _ => OnlyTls::V13 }))),
            phrase!(Given, "the broker ignores the max fragment length extension",
                "The front answers as if the ClientHello had no max_fragment_length (full-size records).",
                r#"^the broker ignores the max fragment length extension$"#, |_| Ok(Step::BrokerIgnoresMfln)),
            phrase!(Given, r#"the broker requires username "<user>" and password "<password>""#,
                "CONNECT must carry these credentials (CONNACK 4 otherwise).",
                r#"^the broker requires username Q(user) and password Q(pass)$"#,
                |c| Ok(Step::BrokerRequiresCredentials { username: text(c, "user"), password: text(c, "pass") })),
            phrase!(Given, "the broker does not authorise the device",
                "Extension: CONNECT is answered with CONNACK 5 (not authorised).",
                r#"^the broker does not authori[sz]e the device$"#, |_| Ok(Step::BrokerNotAuthorized)),
            phrase!(Given, "the broker stalls after the ServerHello",
                "The front forwards the ServerHello and nothing more.",
                r#"^the broker stalls after the ServerHello$"#, |_| Ok(Step::BrokerStallsAfterHello)),
            phrase!(Given, "the broker closes the connection during the handshake",
                "The front closes the connection after the ServerHello.",
                r#"^the broker closes the connection during the handshake$"#, |_| Ok(Step::BrokerClosesMidHandshake)),
            phrase!(Given, "the broker does not answer CONNECT",
                "CONNECT is swallowed: no CONNACK ever comes.",
                r#"^the broker does not answer CONNECT$"#, |_| Ok(Step::BrokerNoConnack)),
            phrase!(Given, "the NTP server reports a time skewed by <duration>",
                "The device's NTP answers are the lab clock plus this signed offset (e.g. `-2 days`, `+10 years`).",
                r#"^the NTP server reports a time skewed by (?P<d>[+-]?\s*\d+\s*[a-z]+)$"#,
                |c| {
                    let skew = signed(c, "d")?;
                    // Judged against today: the lab clock starts at the run's start.
                    let at = OffsetDateTime::now_utc().checked_add(skew);
                    if at.is_some_and(crate::lab::ntp::representable) {
                        Ok(Step::NtpSkew(skew))
                    } else {
                        Err(format!("`{}` is beyond what NTP can carry: the lab clock plus the skew must fall between 1968 and 2104 (RFC 4330 eras 0 and 1)", text(c, "d")))
                    }
                }),
            phrase!(Given, r#"the NTP server reports the time "<RFC 3339 timestamp>""#,
                "The device's NTP answers are this instant.",
                r#"^the NTP server reports the time Q(t)$"#, |c| {
                    let given = text(c, "t");
                    let at = OffsetDateTime::parse(&given, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| format!("`{given}` is not an RFC 3339 timestamp (e.g. 2035-01-01T00:00:00Z)"))?;
                    if !crate::lab::ntp::representable(at) {
                        return Err(format!("`{given}` is beyond what NTP can carry (1968 to 2104, RFC 4330 eras 0 and 1)"));
                    }
                    Ok(Step::NtpFixed(at))
                }),
            phrase!(Given, "the NTP server does not answer",
                "NTP requests from the device get no answer.",
                r#"^the NTP server does not answer$"#, |_| Ok(Step::NtpSilent)),
            phrase!(Given, r#"the DNS server does not resolve "<host>""#,
                "Queries for this name get NXDOMAIN.",
                r#"^the DNS server does not resolve Q(host)$"#, |c| Ok(Step::DnsDoesNotResolve(text(c, "host")))),
            phrase!(Given, r#"the DNS server resolves "<host>" to the lab"#,
                "Extension: the lab answers for this name too (impersonating a production broker).",
                r#"^the DNS server resolves Q(host) to the lab$"#, |c| Ok(Step::DnsResolvesToLab(text(c, "host")))),
            phrase!(When, "the board boots",
                "Resets the board, waits for the ROM banner and provisions it unless told not to.",
                r#"^the board boots$"#, |_| Ok(Step::Boots)),
            phrase!(When, r#"the board is flashed with "<image path>""#,
                "Flashes an image now (see the Given of the same phrase).",
                r#"^the board is flashed with Q(image)$"#, |c| Ok(Step::FlashedWith(text(c, "image")))),
            phrase!(When, r#"the broker publishes "<payload>" to "<topic>""#,
                "The harness publishes through the broker to this scenario's device alone, once the device has subscribed to a matching topic (its SUBACK); QoS 1 unless `with QoS <0|1|2>` follows, and `retained` or `not retained` may end it.",
                r#"^the broker publishes Q(payload) to Q(topic)(?: with QoS (?P<q>\d+))?(?:,? (?P<r>retained|not retained))?$"#,
                |c| Ok(Step::BrokerPublishes { payload: text(c, "payload"), topic: text(c, "topic"), delivery: delivery(c)? })),
            phrase!(When, r#"the broker publishes a <n>-byte message to "<topic>""#,
                "Extension: publishes a payload of that many bytes (long commands test receive buffers); the same options as above.",
                r#"^the broker publishes a (?P<n>\d+)-byte message to Q(topic)(?: with QoS (?P<q>\d+))?(?:,? (?P<r>retained|not retained))?$"#,
                |c| Ok(Step::BrokerPublishesSized { bytes: number(c, "n")?, topic: text(c, "topic"), delivery: delivery(c)? })),
            phrase!(When, "the broker drops the device's connection",
                "The lab closes the device's MQTT connection.",
                r#"^the broker drops the device's connection$"#, |_| Ok(Step::BrokerDrops)),
            phrase!(When, "the broker restarts",
                "The broker goes away for a moment and comes back.",
                r#"^the broker restarts$"#, |_| Ok(Step::BrokerRestarts)),
            phrase!(When, "<duration> pass",
                "Lets time pass (the device keeps running).",
                r#"^(?P<d>\d+\s*[a-z]+) pass(?:es)?$"#, |c| duration(c, "d").map(Step::Pass)),
            phrase!(Then, r#"the serial output contains "<text>" within <duration>"#,
                "A serial line containing the text appears before the deadline.",
                r#"^the serial output contains Q(text) within (?P<d>.+)$"#,
                |c| Ok(Step::SerialContains { text: text(c, "text"), within: duration(c, "d")? })),
            phrase!(Then, "the serial output matches /<regex>/ within <duration>",
                "A serial line matching the regular expression appears before the deadline.",
                r#"^the serial output matches /(?P<re>.*)/ within (?P<d>.+)$"#,
                |c| Ok(Step::SerialMatches { pattern: regex_arg(c, "re")?, within: duration(c, "d")? })),
            phrase!(Then, r#"the serial output never contains "<text>""#,
                "From the scenario's reset until it ends (a short grace window after its last step included).",
                r#"^the serial output never contains Q(text)$"#, |c| Ok(Step::SerialNeverContains(text(c, "text")))),
            phrase!(Then, "the device reports a TLS failure with code <n>",
                "The firmware's own report (through its log profile) names this BearSSL error, and no later attempt connects.",
                r#"^the device reports a TLS failure with code (?P<n>-?\d+)$"#, |c| number(c, "n").map(Step::TlsFailureCode)),
            phrase!(Then, "the device reports MQTT state <n>",
                "The firmware reports this PubSubClient state (optionally `within <duration>`).",
                r#"^the device reports MQTT state (?P<n>-?\d+)(?: within (?P<d>.+))?$"#,
                |c| Ok(Step::MqttState {
                    state: number(c, "n")?,
                    within: if c.name("d").is_some() { Some(duration(c, "d")?) } else { None },
                })),
            phrase!(Then, "the board does not reboot",
                "No crash and no boot the harness did not cause, watched for at least the quiet window (2 s).",
                r#"^the board does not reboot$"#, |_| Ok(Step::DoesNotReboot)),
            phrase!(Then, "the board reboots within <duration>",
                "A new ROM banner appears before the deadline.",
                r#"^the board reboots within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::RebootsWithin)),
            phrase!(Then, "the TLS handshake succeeds within <duration>",
                "The front saw a completed handshake from this device.",
                r#"^the TLS handshake succeeds within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::HandshakeSucceeds)),
            phrase!(Then, "the TLS handshake does not complete",
                "No handshake from this device completes, on its first attempt or the next one; needs evidence the device tried (else inconclusive).",
                r#"^the TLS handshake does not complete$"#, |_| Ok(Step::HandshakeDoesNotComplete)),
            phrase!(Then, "the device starts a TLS handshake within <duration>",
                "Extension: a ClientHello from the device reached the broker (the attempt, whatever the outcome).",
                r#"^the device starts a TLS handshake within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::StartsHandshake)),
            phrase!(Then, r#"the device sent SNI "<host>""#,
                "The device's ClientHello carried this server_name.",
                r#"^the device sent SNI Q(host)$"#, |c| Ok(Step::SentSni(text(c, "host")))),
            phrase!(Then, "the device sent no SNI",
                "The device's ClientHello carried no server_name.",
                r#"^the device sent no SNI$"#, |_| Ok(Step::SentNoSni)),
            phrase!(Then, "the device offered a max fragment length of <n> bytes",
                "The device's ClientHello asked for this max_fragment_length.",
                r#"^the device offered a max fragment length of (?P<n>\d+) bytes$"#, |c| number(c, "n").map(Step::OfferedMfln)),
            phrase!(Then, "the device connects to the broker within <duration>",
                "The broker accepted the device: CONNACK 0 went to it (a refused CONNECT is not a connection).",
                r#"^the device connects to the broker within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::ConnectsWithin)),
            phrase!(Then, "the device sends an MQTT CONNECT within <duration>",
                "The broker saw the device's MQTT CONNECT (the attempt, whatever the answer).",
                r#"^the device sends an MQTT CONNECT within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::SendsConnect)),
            phrase!(Then, "the device never completes an MQTT connection",
                "No CONNACK 0 reaches the device, on its first attempt or the next one; needs evidence the device tried (else inconclusive).",
                r#"^the device never completes an MQTT connection$"#, |_| Ok(Step::NeverConnects)),
            phrase!(Then, r#"the device publishes to "<topic>" within <duration>"#,
                "The broker saw a PUBLISH from the device on this topic.",
                r#"^the device publishes to Q(topic) within (?P<d>.+)$"#,
                |c| Ok(Step::PublishesTo { topic: text(c, "topic"), within: duration(c, "d")? })),
            phrase!(Then, r#"the device publishes a message matching /<regex>/ to "<topic>" within <duration>"#,
                "The broker saw a PUBLISH on this topic whose payload matches.",
                r#"^the device publishes a message matching /(?P<re>.*)/ to Q(topic) within (?P<d>.+)$"#,
                |c| Ok(Step::PublishesMatching { pattern: regex_arg(c, "re")?, topic: text(c, "topic"), within: duration(c, "d")? })),
            phrase!(Then, "the device publishes at most <n> messages per <duration>",
                "From the moment the step is reached to the end of the scenario (at least one window long): more PUBLISHes than that in any window fail.",
                r#"^the device publishes at most (?P<n>\d+) messages? per (?P<d>.+)$"#,
                |c| Ok(Step::PublishesAtMost { count: number(c, "n")?, per: window(c, "d")? })),
            phrase!(Then, "the device opens at most <n> connections per <duration>",
                "Extension: TCP connections to the broker, counted from the moment the step is reached to the end of the scenario (reconnect manners).",
                r#"^the device opens at most (?P<n>\d+) connections? per (?P<d>.+)$"#,
                |c| Ok(Step::OpensAtMost { count: number(c, "n")?, per: window(c, "d")? })),
            phrase!(Then, r#"the device's publishes to "<topic>" are <not retained|retained>"#,
                "Every PUBLISH the device sends on this topic until the scenario ends carries (or does not carry) the retain flag; at least one must be seen.",
                r#"^the device's publishes to Q(topic) are (?P<r>retained|not retained)$"#,
                |c| Ok(Step::PublishesRetained { topic: text(c, "topic"), retained: text(c, "r") == "retained" })),
            phrase!(Then, r#"the device's publishes to "<topic>" use QoS <0|1|2>"#,
                "Every PUBLISH the device sends on this topic until the scenario ends uses this QoS; at least one must be seen.",
                r#"^the device's publishes to Q(topic) use QoS (?P<q>\d+)$"#,
                |c| Ok(Step::PublishesWithQos { topic: text(c, "topic"), qos: Qos::from_level(&text(c, "q"))? })),
            phrase!(Then, r#"the device subscribes to "<topic>" within <duration>"#,
                "The broker saw a SUBSCRIBE for this topic.",
                r#"^the device subscribes to Q(topic) within (?P<d>.+)$"#,
                |c| Ok(Step::SubscribesTo { topic: text(c, "topic"), within: duration(c, "d")? })),
            phrase!(Then, "the device asked for the time within <duration>",
                "The NTP server saw a request from the device.",
                r#"^the device asked for the time within (?P<d>.+)$"#, |c| duration(c, "d").map(Step::AskedForTime)),
            phrase!(Then, r#"the device looks up "<host>" within <duration>"#,
                "Extension: the lab's DNS server saw the device ask for this name.",
                r#"^the device looks up Q(host) within (?P<d>.+)$"#,
                |c| Ok(Step::LooksUp { host: text(c, "host"), within: duration(c, "d")? })),
            phrase!(Then, "the transcript matches the snapshot",
                "The normalised serial transcript equals the reviewed insta snapshot.",
                r#"^the transcript matches the snapshot$"#, |_| Ok(Step::TranscriptMatchesSnapshot)),
        ]
    })
}

fn compiled() -> &'static [(Regex, &'static Phrase)] {
    static COMPILED: OnceLock<Vec<(Regex, &'static Phrase)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        vocabulary()
            .iter()
            .filter_map(|phrase| {
                let mut pattern = phrase.pattern.to_owned();
                // Expand Q(name) into a quoted, escapable capture called `name`.
                while let Some(at) = pattern.find("Q(") {
                    let end = pattern[at..].find(')').map(|e| at + e)?;
                    let name = pattern[at + 2..end].to_owned();
                    pattern.replace_range(at..=end, &Q.replace('%', &name));
                }
                Regex::new(&pattern).ok().map(|re| (re, phrase))
            })
            .collect()
    })
}

/// The phrase of the vocabulary a step text is written in, if any.
pub fn phrase_of(text: &str) -> Option<&'static Phrase> {
    let text = text.trim();
    compiled()
        .iter()
        .find(|(regex, _)| regex.is_match(text))
        .map(|(_, phrase)| *phrase)
}

/// Parses one step's text (without its keyword).
pub fn parse(text: &str) -> Result<Step, StepError> {
    let text = text.trim();
    for (regex, phrase) in compiled() {
        if let Some(captures) = regex.captures(text) {
            return (phrase.build)(&captures)
                .map(unescape_step)
                .map_err(|problem| StepError::BadArgument {
                    text: text.to_owned(),
                    problem,
                });
        }
    }
    Err(StepError::Unknown {
        text: text.to_owned(),
        suggestion: closest(text),
    })
}

/// Quoted arguments may contain `\"`; the step sees the plain text.
fn unescape_step(step: Step) -> Step {
    fn un(s: String) -> String {
        if s.contains('\\') {
            s.replace("\\\"", "\"").replace("\\\\", "\\")
        } else {
            s
        }
    }
    match step {
        Step::SerialContains { text, within } => Step::SerialContains {
            text: un(text),
            within,
        },
        Step::SerialNeverContains(text) => Step::SerialNeverContains(un(text)),
        Step::BrokerPublishes {
            payload,
            topic,
            delivery,
        } => Step::BrokerPublishes {
            payload: un(payload),
            topic: un(topic),
            delivery,
        },
        other => other,
    }
}

/// A phrase or a step text as a list of words, its arguments replaced by `_`
/// (quoted text, `/regex/`, numbers with their unit, `<placeholders>`), so a
/// step is compared with the vocabulary by its wording alone.
fn shape(text: &str) -> Vec<String> {
    static ARGS: OnceLock<Regex> = OnceLock::new();
    let args = ARGS.get_or_init(|| {
        Regex::new(r#""(?:[^"\\]|\\.)*"|/[^/]*/|<[^>]*>|[+-]?\d+(?:\.\d+)?(?:-byte)?(?:\s*(?:ms|s|seconds?|min|h|days?|years?|bytes?))?"#)
            .expect("a literal pattern")
    });
    args.replace_all(text.trim(), " _ ")
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Words that turn a step into its opposite: a suggestion must not add one.
const NEGATIONS: &[&str] = &["never", "not", "no", "does"];

/// How close a step text's words are to a phrase's: the longest common
/// subsequence of words, a misspelt word counting as the same word, over the
/// longer of the two, minus a penalty for every negation the phrase adds.
fn similarity(text: &[String], phrase: &[String]) -> f64 {
    let same = |a: &str, b: &str| a == b || strsim::normalized_damerau_levenshtein(a, b) >= 0.7;
    let mut lcs = vec![vec![0usize; phrase.len() + 1]; text.len() + 1];
    for (i, a) in text.iter().enumerate() {
        for (j, b) in phrase.iter().enumerate() {
            lcs[i + 1][j + 1] = if same(a, b) {
                lcs[i][j] + 1
            } else {
                lcs[i][j + 1].max(lcs[i + 1][j])
            };
        }
    }
    let common = lcs[text.len()][phrase.len()] as f64;
    let added_negations = phrase
        .iter()
        .filter(|w| NEGATIONS.contains(&w.as_str()) && !text.contains(w))
        .count() as f64;
    common / text.len().max(phrase.len()).max(1) as f64 - 0.3 * added_negations
}

/// The documented phrase closest to `text`, when one is close.
fn closest(text: &str) -> Option<String> {
    let words = shape(text);
    vocabulary()
        .iter()
        .map(|phrase| (similarity(&words, &shape(phrase.doc)), phrase.doc))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, doc)| doc.to_owned())
}

/// The step reference (Markdown), generated from the vocabulary itself.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Step reference\n\nGenerated by `hil steps` from the harness's vocabulary; \
         do not edit by hand.\n\nDurations accept `ms`, `s`/`seconds`, `min`, `h`, `days`, `years`, \
         and a sign where it makes sense (`-2 days`). Quoted arguments may contain `\\\"`.\n",
    );
    for (kind, title) in [
        (Kind::Given, "Given"),
        (Kind::When, "When"),
        (Kind::Then, "Then"),
    ] {
        out.push_str(&format!("\n## {title}\n\n"));
        for phrase in vocabulary().iter().filter(|p| p.kind == kind) {
            out.push_str(&format!("- `{title} {}`: {}\n", phrase.doc, phrase.help));
        }
    }
    out.push_str(VERDICTS);
    out
}

/// How every Then step is judged (docs/steps.md), in the harness's own terms.
const VERDICTS: &str = "
## What a verdict means

Every Then step ends in one of three verdicts: **pass**, **fail**, or
**inconclusive**. Inconclusive counts as a failure: it says which evidence never
came (\"the device never tried to reach the broker\"). The rules below are the
harness's contract; `hil::runner::expect` implements them as pure functions of
the device's events and a clock, and its unit tests prove each Then step can fail.

- **Evidence of the attempt.** `the TLS handshake does not complete`, `the device
  never completes an MQTT connection` and `the device reports a TLS failure with
  code <n>` are only judged once the device has visibly tried to reach its
  broker: a DNS query for the broker's name (the lab's, or one the scenario maps
  or refuses), a TCP connection to the broker, a ClientHello, a CONNECT, or the
  firmware's own report of a failed attempt (`[tls] error`, `[dns] failed`,
  `[mqtt] failed`, through its log profile). The firmware saying it is about to
  dial (`[tls] connecting`) is no attempt: nothing reached the lab. A board that
  never boots, never joins the network or never dials is inconclusive.
- **\"Never\" covers the next attempt.** A negative step is not settled by the
  first failure: it waits for the firmware's next attempt to fail too (two
  failed attempts, counted from the device's `[mqtt] failed` reports or from
  what the broker saw: handshakes that did not complete, refused CONNECTs,
  connections that closed before a CONNACK 0, unanswered lookups), or for the
  settle window counted from that first failure, whichever comes first. When
  the device announced its retry (`[mqtt] retry in_ms=N`, or the seed's \"try
  again in 5 seconds\"), the window also covers the settle window after that
  retry is due. It then keeps holding until the scenario ends: a firmware that
  fails once and retries with `setInsecure()` fails the scenario, and the
  failure says so, on a real board's timing too (a first failure seconds after
  the act, a retry 5 s later).
- **Settled, not slept.** The settle window (`--settle`; 10 s on virtual boards,
  20 s on real ones and on virtual boards at `--pace hardware`) counts from the
  device's first failure, or from the last When step while it has not failed.
  Nothing waits longer than the evidence needs.
- **Windows start when the step starts.** `at most <n> ... per <duration>` counts
  from the moment its step is reached, watches at least one window, and keeps
  counting until the scenario ends.
- **`connects` means accepted.** `the device connects to the broker` needs a
  CONNACK 0 sent to the device; a refused CONNECT is not a connection. `the
  device sends an MQTT CONNECT` is the attempt, whatever the answer. Positive
  steps about the connection stop waiting early only when the device has failed
  twice for a reason no retry changes (a certificate verdict, BearSSL 32..63, or
  a refused CONNECT).
- **Crashes fail every scenario.** An `Exception (n)` dump, `Soft WDT reset`, `wdt
  reset`, a panic or an abort, a ROM banner with `rst cause:4`, or a second boot
  after one harness reset fails the scenario it happens in, named by its
  exception cause (0 IllegalInstruction ... 28 LoadProhibited, 29
  StoreProhibited) and, with the firmware's ELF (`--elf`, or an `.elf` beside the
  image), its backtrace decoded to function and file:line.
  A scenario that says `Then the board reboots within <duration>` expects a
  reboot from the act its window counts from (the last When step before it)
  on; a crash before that act still fails it.
- **Reboots are seen in the bytes.** After a hard reset (EN, a brown-out) the
  ROM prints its banner at 74880 baud, which a console at 115200 reads as
  garbage of a known shape (`hil_contract::uart`): the harness recognises it on
  any firmware and any log profile. A software restart, an exception or a
  watchdog prints the banner readable at 115200. A crash is judged once its
  dump is whole (its `<<<stack<<<` end, or 500 ms of quiet): a backtrace from
  half a dump names the wrong functions. `Panic` counts only as the core prints
  it (`Panic file:line function`).
- **A scenario ends after its grace window.** After the last step passes, the
  scenario keeps watching for a short grace window (`--grace`; 150 ms virtual,
  1 s real) and as long as `the board does not reboot` (2 s) or `at most ... per`
  need: a crash 50 ms after CONNACK is that scenario's crash.
- **Only the device's own events count**, and only those after the scenario
  started; the lab delivers a scenario's broker publishes to that scenario's
  device alone (other boards subscribed to the same topic never receive them;
  with the mosquitto backend, which terminates TLS itself, they do).
- **A publish waits for a listener.** `When the broker publishes ...` waits (at
  most the settle window) for this device's SUBSCRIBE covering the topic and
  the broker's SUBACK; when none comes, the step fails and says so: a message
  published to nobody would let a firmware pass checks about a command it never
  received. It publishes at QoS 1 unless it says `with QoS <0|1|2>`, and
  `retained` or `not retained` may end it; a retained message is cleared when
  its scenario ends.
- **Nothing seen is not a pass.** `never contains`, `does not reboot` and `at
  most <n> ... per <duration>` are inconclusive when the scenario saw nothing
  of the kind they judge (a silent console, a device that never published or
  never connected). `per 0 s` is refused when the features load, and so is a
  scenario with no Then step: it would pass whatever the firmware does.
- **What a publish carries is judged.** `the device's publishes to \"<topic>\"
  are <not retained|retained>` and `... use QoS <0|1|2>` hold for every publish
  to that topic until the scenario ends; at least one must be seen (else
  inconclusive).
";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every phrase of STEPS.md, written as users write them.
    const STEPS_MD_EXAMPLES: &[&str] = &[
        r#"a virtual board running firmware "reference""#,
        "the board under test",
        r#"the board is flashed with "fixtures/images/reference.bin""#,
        "the board is not provisioned",
        r#"the device uses log profile "seed-style""#,
        r#"the device is provisioned with username "hil" and password "wrong""#,
        r#"the broker presents the "wrong-san" certificate"#,
        "the broker requires SNI",
        "the broker requires a client certificate",
        "the broker accepts only TLS 1.3",
        "the broker ignores the max fragment length extension",
        r#"the broker requires username "hil" and password "s3cret""#,
        "the broker stalls after the ServerHello",
        "the broker closes the connection during the handshake",
        "the broker does not answer CONNECT",
        "the NTP server reports a time skewed by -2 days",
        r#"the NTP server reports the time "2035-01-01T00:00:00Z""#,
        "the NTP server does not answer",
        r#"the DNS server does not resolve "broker.hil.test""#,
        "the board boots",
        r#"the broker publishes "led=on" to "hil/commands""#,
        r#"the broker publishes a 1000-byte message to "hil/commands""#,
        r#"the broker publishes "led=on" to "hil/commands" with QoS 0"#,
        r#"the broker publishes "led=on" to "hil/commands" with QoS 2, retained"#,
        r#"the broker publishes "led=on" to "hil/commands" not retained"#,
        r#"the device's publishes to "hil/telemetry" are not retained"#,
        r#"the device's publishes to "hil/telemetry" are retained"#,
        r#"the device's publishes to "hil/telemetry" use QoS 1"#,
        "the broker drops the device's connection",
        "the broker restarts",
        "30 s pass",
        r#"the serial output contains "[mqtt] connected" within 20 s"#,
        r#"the serial output matches /rc=-?\d+/ within 5 seconds"#,
        r#"the serial output never contains "Exception""#,
        "the device reports a TLS failure with code 56",
        "the device reports MQTT state -2",
        "the board does not reboot",
        "the board reboots within 10 s",
        "the TLS handshake succeeds within 20 s",
        "the TLS handshake does not complete",
        r#"the device sent SNI "broker.hil.test""#,
        "the device sent no SNI",
        "the device offered a max fragment length of 512 bytes",
        "the device connects to the broker within 20 s",
        "the device never completes an MQTT connection",
        r#"the device publishes to "hil/telemetry" within 20 s"#,
        r#"the device publishes a message matching /"seq":\d+/ to "hil/telemetry" within 20 s"#,
        "the device publishes at most 5 messages per 2 s",
        r#"the device subscribes to "hil/commands" within 20 s"#,
        "the device asked for the time within 10 s",
        "the transcript matches the snapshot",
        "the device sends an MQTT CONNECT within 20 s",
        "the device starts a TLS handshake within 20 s",
        r#"the device looks up "mqtt.example.com" within 10 s"#,
    ];

    #[test]
    fn every_documented_phrase_parses() {
        for text in STEPS_MD_EXAMPLES {
            assert!(parse(text).is_ok(), "`{text}`: {:?}", parse(text));
        }
        assert_eq!(
            compiled().len(),
            vocabulary().len(),
            "a phrase's pattern does not compile"
        );
    }

    #[test]
    fn arguments_are_typed() {
        assert_eq!(
            parse("the NTP server reports a time skewed by +10 years").unwrap(),
            Step::NtpSkew(time::Duration::days(3650))
        );
        assert_eq!(
            parse("the device reports MQTT state -4 within 30 s").unwrap(),
            Step::MqttState {
                state: -4,
                within: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            parse("the broker accepts only TLS 1.0").unwrap(),
            Step::BrokerOnlyTls(OnlyTls::V10)
        );
        assert_eq!(
            parse(r#"the serial output contains "say \"hi\"" within 1 s"#).unwrap(),
            Step::SerialContains {
                text: "say \"hi\"".into(),
                within: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = parse(r#"the broker presents the "wrong-sans" certificate"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wrong-sans") && err.contains("wrong-san,"),
            "{err}"
        );
        let err = parse("the TLS handshake succeeds within 2 fortnights")
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 fortnights"), "{err}");
        let err = parse("the serial output matches /(/ within 1 s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("regular expression"), "{err}");
        for skew in ["+100000 years", "-3000 years", "+200 years"] {
            let err = parse(&format!("the NTP server reports a time skewed by {skew}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("beyond what NTP can carry"), "{skew}: {err}");
        }
        let err = parse(r#"the NTP server reports the time "2200-01-01T00:00:00Z""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond what NTP can carry"), "{err}");
        let err = parse("the TLS handshake succeeds within -2 s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn typos_get_the_phrase_they_meant() {
        let table = [
            (
                r#"the device publishs to "hil/t" within 20 s"#,
                Some(r#"the device publishes to "<topic>" within <duration>"#),
            ),
            (
                r#"the serial output contain "x""#,
                Some(r#"the serial output contains "<text>" within <duration>"#),
            ),
            (
                r#"the serial output contain "x" within 5 s"#,
                Some(r#"the serial output contains "<text>" within <duration>"#),
            ),
            (
                "the device connects to the broker in 20 s",
                Some("the device connects to the broker within <duration>"),
            ),
            (
                r#"the broker present the "valid" certificate"#,
                Some(r#"the broker presents the "<certificate profile>" certificate"#),
            ),
            (
                "the TLS handshake succeed within 20 s",
                Some("the TLS handshake succeeds within <duration>"),
            ),
            (
                "the device never complete an MQTT connection",
                Some("the device never completes an MQTT connection"),
            ),
            ("the board boot", Some("the board boots")),
            (
                "the NTP server report a time skewed by -2 days",
                Some("the NTP server reports a time skewed by <duration>"),
            ),
            (
                "the device sent SNI broker.hil.test",
                Some(r#"the device sent SNI "<host>""#),
            ),
            (
                "the devise reports a TLS failure with code 56",
                Some("the device reports a TLS failure with code <n>"),
            ),
            (
                "the broker publishes led=on to hil/commands",
                Some(r#"the broker publishes "<payload>" to "<topic>""#),
            ),
            ("flibber", None),
            ("the weather is nice today", None),
        ];
        let mut wrong = Vec::new();
        for (typo, wanted) in table {
            let got = match parse(typo) {
                Err(StepError::Unknown { suggestion, .. }) => suggestion,
                other => panic!("`{typo}` parsed: {other:?}"),
            };
            if got.as_deref() != wanted {
                wrong.push(format!("`{typo}`: suggested {got:?}, wanted {wanted:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn unknown_steps_suggest_the_nearest_phrase() {
        let err = parse("the device connects to the broker in 20 s").unwrap_err();
        assert!(
            matches!(&err, StepError::Unknown { suggestion: Some(s), .. } if s.contains("connects to the broker within")),
            "{err}"
        );
        assert!(matches!(
            parse("flibber"),
            Err(StepError::Unknown {
                suggestion: None,
                ..
            })
        ));
    }

    #[test]
    fn the_reference_lists_every_phrase() {
        let doc = reference_markdown();
        for phrase in vocabulary() {
            assert!(doc.contains(phrase.doc), "{}", phrase.doc);
        }
    }
}
