//! The image descriptor: the independent knobs that select the twin's behaviour.
//!
//! A virtual firmware image is a genuine ESP8266 v1 image whose data segment
//! carries this descriptor. Every firmware variant of the catalogue is a named set
//! of knob values ([`Variant::knobs`]), and any combination of knobs is a valid
//! firmware, so a new mistake to test needs no code.
//!
//! ```
//! use hil_contract::descriptor::{Descriptor, Trust, Variant};
//!
//! let mut fw = Variant::Fingerprint.descriptor();
//! fw.set("connect", "ip")?; // a fingerprint pin *and* connect-by-ip
//! assert_eq!(fw.knobs.trust, Trust::Fingerprint);
//! let bytes = fw.encode();
//! assert_eq!(Descriptor::decode(&bytes)?, fw);
//! # Ok::<(), hil_contract::descriptor::DescriptorError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// Marks the start of a descriptor inside an image's data.
pub const MAGIC: &[u8; 8] = b"HILTWIN1";

macro_rules! knob_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value as written in descriptors and on the command line.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let valid: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    valid.join(", ")
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

knob_enum!(
    /// How the firmware checks the broker's certificate.
    Trust {
        /// `setTrustAnchors` with the provisioned CA.
        Anchors => "anchors",
        /// `setInsecure()`.
        Insecure => "insecure",
        /// `setFingerprint` with the provisioned leaf SHA-1.
        Fingerprint => "fingerprint",
        /// `setKnownKey` with the provisioned public key.
        KnownKey => "known-key",
        /// `allowSelfSignedCerts()`.
        SelfSigned => "self-signed",
    }
);

knob_enum!(
    /// Which certificate the firmware uses as its trust anchor.
    Anchor {
        /// The root (correct).
        Root => "root",
        /// The broker certificate's issuer, an intermediate (a common paste mistake).
        Issuer => "issuer",
    }
);

knob_enum!(
    /// Whether the compiled or provisioned CA text survives into BearSSL.
    CaText {
        /// Parsed as given.
        Intact => "intact",
        /// Mangled on the way in (a bad paste): no anchor parses.
        Malformed => "malformed",
    }
);

knob_enum!(
    /// Where the device clock comes from.
    Clock {
        /// SNTP before connecting (correct).
        Ntp => "ntp",
        /// Never set: 1970 + uptime.
        Uptime => "uptime",
        /// A timestamp fixed at build time (`build_time`).
        BuildTime => "build-time",
    }
);

knob_enum!(
    /// How the firmware addresses the broker.
    Connect {
        /// By host name: SNI sent, name checked.
        Hostname => "hostname",
        /// By the resolved IP address: no SNI, no name check.
        Ip => "ip",
    }
);

knob_enum!(
    /// The language of the firmware's serial log.
    LogStyle {
        /// The DESIGN.md `[tag] key=value` lines.
        Reference => "reference",
        /// Free-form lines of the forum-post kind.
        Seed => "seed",
    }
);

knob_enum!(
    /// When the firmware publishes.
    Publish {
        /// Every provisioned interval.
        Interval => "interval",
        /// On every loop turn (a flood).
        EveryLoop => "every-loop",
    }
);

knob_enum!(
    /// When the firmware subscribes to its command topic.
    Subscribe {
        /// After every successful MQTT connection (correct: the broker forgets a
        /// clean session's subscriptions when the connection ends).
        EveryConnect => "every-connect",
        /// After the first successful MQTT connection only.
        FirstConnect => "first-connect",
    }
);

knob_enum!(
    /// Crash behaviour.
    Crash {
        /// Never crashes.
        Never => "never",
        /// An `Exception (28)` dump right after the first MQTT connection, then a reboot.
        AfterConnect => "after-connect",
        /// `ESP.restart()` right after the first MQTT connection: no dump, the
        /// core prints nothing, the chip restarts with the software-restart cause.
        RestartAfterConnect => "restart-after-connect",
        /// Hangs with interrupts off right after the first MQTT connection: no
        /// output at all until the hardware watchdog resets the chip.
        WdtAfterConnect => "wdt-after-connect",
    }
);

/// What a failed connection changes for the attempts after it.
///
/// Written `none`, `insecure` (after the first failure) or
/// `insecure-after:<N>` (after N failed connects, N ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// Nothing: every attempt checks the certificate the same way.
    None,
    /// `setInsecure()` after this many failed connects (at least 1), for good:
    /// the forum "fix" for an error nobody read.
    InsecureAfter(u32),
}

impl Fallback {
    /// `fallback=insecure`: after the first failed connect.
    pub const INSECURE: Fallback = Fallback::InsecureAfter(1);

    /// The forms the knob takes, as help texts list them.
    pub const FORMS: &'static [&'static str] = &["none", "insecure", "insecure-after:<N>"];
}

impl FromStr for Fallback {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let valid = || "none, insecure, insecure-after:<N> (N ≥ 1)".to_owned();
        match s {
            "none" => Ok(Fallback::None),
            "insecure" => Ok(Fallback::INSECURE),
            _ => {
                let n = s.strip_prefix("insecure-after:").ok_or_else(valid)?;
                match n.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(Fallback::InsecureAfter(n)),
                    _ => Err(valid()),
                }
            }
        }
    }
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::None => f.write_str("none"),
            Fallback::InsecureAfter(1) => f.write_str("insecure"),
            Fallback::InsecureAfter(n) => write!(f, "insecure-after:{n}"),
        }
    }
}

/// How the firmware retries a failed MQTT connection.
///
/// Written `backoff`, `immediate` or `fixed:<duration>` (`fixed:5s`,
/// `fixed:500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reconnect {
    /// Exponential backoff, 1 s doubling to 30 s.
    Backoff,
    /// Retries at once, forever.
    Immediate,
    /// The same pause every time, in milliseconds: the seed firmware's "try
    /// again in 5 seconds".
    Fixed {
        /// The pause.
        ms: u64,
    },
}

impl Reconnect {
    /// The forms the knob takes, as help texts list them.
    pub const FORMS: &'static [&'static str] = &["backoff", "immediate", "fixed:<duration>"];

    /// The longest fixed pause a descriptor takes: a day (the sketch keeps it in
    /// a `uint32_t` of milliseconds).
    pub const MAX_FIXED_MS: u64 = 86_400_000;
}

impl FromStr for Reconnect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let valid = || {
            "backoff, immediate, fixed:<duration> (e.g. fixed:5s, fixed:500ms; 1 ms to 24 h)"
                .to_owned()
        };
        match s {
            "backoff" => Ok(Reconnect::Backoff),
            "immediate" => Ok(Reconnect::Immediate),
            _ => {
                let text = s.strip_prefix("fixed:").ok_or_else(valid)?;
                match parse_ms(text) {
                    Some(ms) if (1..=Reconnect::MAX_FIXED_MS).contains(&ms) => {
                        Ok(Reconnect::Fixed { ms })
                    }
                    _ => Err(valid()),
                }
            }
        }
    }
}

impl fmt::Display for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reconnect::Backoff => f.write_str("backoff"),
            Reconnect::Immediate => f.write_str("immediate"),
            Reconnect::Fixed { ms } if ms % 1000 == 0 => write!(f, "fixed:{}s", ms / 1000),
            Reconnect::Fixed { ms } => write!(f, "fixed:{ms}ms"),
        }
    }
}

/// Milliseconds in `500ms`, `5s` or `2min`: a whole number and a unit.
fn parse_ms(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// The root certificate the compiled-in settings trust: the production root
/// (public, so no lab certificate chains to it), or one a test build was given.
///
/// In a descriptor it is the certificate's DER in base64 (written URL-safe and
/// unpadded, so it fits in a `--firmware variant+knob=value` spec; the standard
/// alphabet and padding are read too); empty for the production root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompiledRoot {
    der: Option<Vec<u8>>,
}

impl CompiledRoot {
    /// The production root (the release firmware's).
    pub const fn production() -> CompiledRoot {
        CompiledRoot { der: None }
    }

    /// A root given as DER: it must be one DER SEQUENCE (a certificate's
    /// outer shape), nothing before or after it. Whether BearSSL can use it is
    /// for the handshake to say, as on a device.
    pub fn from_der(der: Vec<u8>) -> Result<CompiledRoot, String> {
        if der.len() > MAX_ROOT_DER {
            return Err(format!(
                "a certificate of at most {MAX_ROOT_DER} bytes of DER (this one has {})",
                der.len()
            ));
        }
        if der_sequence_len(&der) != Some(der.len()) {
            return Err("one DER-encoded certificate (a SEQUENCE, nothing after it)".into());
        }
        Ok(CompiledRoot { der: Some(der) })
    }

    /// The DER, unless this is the production root.
    pub fn der(&self) -> Option<&[u8]> {
        self.der.as_deref()
    }

    /// The certificate as PEM, unless this is the production root.
    pub fn pem(&self) -> Option<String> {
        let der = self.der.as_deref()?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Some(pem)
    }
}

/// A root certificate larger than this is no root a device holds (an RSA-4096
/// root is about 1.4 KB); the bound also keeps a descriptor within its u16 length.
const MAX_ROOT_DER: usize = 16 * 1024;

/// The length of the DER TLV at the start of `der`, if it is a SEQUENCE with a
/// definite length.
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    header.checked_add(len)
}

impl fmt::Display for CompiledRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.der {
            None => Ok(()),
            Some(der) => f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der)),
        }
    }
}

impl FromStr for CompiledRoot {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        if text.is_empty() {
            return Ok(CompiledRoot::production());
        }
        let unpadded = text.trim_end_matches('=');
        let der = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(unpadded)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded))
            .map_err(|_| {
                "empty (the production root) or a certificate's DER in base64".to_owned()
            })?;
        CompiledRoot::from_der(der)
    }
}

/// Every knob, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// Firmware name in the boot line.
    pub name: String,
    /// Semantic version in the boot line.
    pub version: String,
    /// Certificate checking mode.
    pub trust: Trust,
    /// Which CA is the anchor.
    pub anchor: Anchor,
    /// Whether the CA text survives.
    pub ca: CaText,
    /// What a failed TLS connection changes.
    pub fallback: Fallback,
    /// Device clock source.
    pub clock: Clock,
    /// Unix time used when `clock` is `build-time`.
    pub build_time: u64,
    /// How the broker is addressed.
    pub connect: Connect,
    /// `setBufferSizes` receive argument: record data bytes (BearSSL's 325 bytes
    /// of overhead are added, as the ESP8266 core does).
    pub rx_buffer: usize,
    /// `setBufferSizes` transmit argument (85 bytes of overhead are added).
    pub tx_buffer: usize,
    /// Log language.
    pub log: LogStyle,
    /// Publish pacing.
    pub publish: Publish,
    /// When the command topic is subscribed.
    pub subscribe: Subscribe,
    /// Retry pacing.
    pub reconnect: Reconnect,
    /// Crash behaviour.
    pub crash: Crash,
    /// PubSubClient packet buffer, bytes.
    pub mqtt_buffer: usize,
    /// The broker the compiled-in settings dial (a test build's own name).
    pub broker_host: String,
    /// The root the compiled-in settings trust (a test build's lab root).
    pub root_der: CompiledRoot,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            name: "hil-reference".into(),
            version: "1.0.0".into(),
            trust: Trust::Anchors,
            anchor: Anchor::Root,
            ca: CaText::Intact,
            fallback: Fallback::None,
            clock: Clock::Ntp,
            // 2024-01-01T00:00:00Z: a build date long before any lab clock.
            build_time: 1_704_067_200,
            connect: Connect::Hostname,
            rx_buffer: 16_384,
            tx_buffer: 512,
            log: LogStyle::Reference,
            publish: Publish::Interval,
            subscribe: Subscribe::EveryConnect,
            reconnect: Reconnect::Backoff,
            crash: Crash::Never,
            mqtt_buffer: 256,
            broker_host: "mqtt.example.com".into(),
            root_der: CompiledRoot::production(),
        }
    }
}

/// The knob names, in the order descriptors list them.
pub const KNOB_NAMES: &[&str] = &[
    "name",
    "version",
    "trust",
    "anchor",
    "ca",
    "fallback",
    "clock",
    "build_time",
    "connect",
    "rx_buffer",
    "tx_buffer",
    "log",
    "publish",
    "subscribe",
    "reconnect",
    "crash",
    "mqtt_buffer",
    "broker_host",
    "root_der",
];

/// A descriptor that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// A knob that does not exist.
    #[error("unknown knob `{name}` (knobs: {})", KNOB_NAMES.join(", "))]
    UnknownKnob {
        /// What was given.
        name: String,
    },
    /// A value the knob does not take.
    #[error("knob `{name}` does not take `{value}` (valid: {valid})")]
    BadValue {
        /// The knob.
        name: String,
        /// What was given.
        value: String,
        /// What it takes.
        valid: String,
    },
    /// A `knob=value` setting without the `=`.
    #[error("`{0}` is not of the form knob=value")]
    NotAnAssignment(String),
    /// No descriptor in the data (not a virtual firmware image).
    #[error("no twin descriptor (magic HILTWIN1) in the image data")]
    Missing,
    /// The descriptor's bytes are cut short or not UTF-8.
    #[error("the descriptor is truncated or not UTF-8")]
    Corrupt,
    /// An unknown variant name.
    #[error("unknown firmware variant `{0}` (variants: {list})", list = variant_list())]
    UnknownVariant(String),
}

/// A firmware description: the variant it started from and its knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The variant this descriptor was built from (informational).
    pub variant: String,
    /// The behaviour.
    pub knobs: Knobs,
}

fn variant_list() -> String {
    Variant::ALL
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn number(name: &str, value: &str) -> Result<u64, DescriptorError> {
    value.parse().map_err(|_| DescriptorError::BadValue {
        name: name.into(),
        value: value.into(),
        valid: "a non-negative integer".into(),
    })
}

fn typed<T: FromStr<Err = String>>(name: &str, value: &str) -> Result<T, DescriptorError> {
    value.parse().map_err(|valid| DescriptorError::BadValue {
        name: name.into(),
        value: value.into(),
        valid,
    })
}

impl Descriptor {
    /// Sets one knob from its text form.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), DescriptorError> {
        let k = &mut self.knobs;
        match name {
            "name" => k.name = value.into(),
            "version" => k.version = value.into(),
            "trust" => k.trust = typed(name, value)?,
            "anchor" => k.anchor = typed(name, value)?,
            "ca" => k.ca = typed(name, value)?,
            "fallback" => k.fallback = typed(name, value)?,
            "clock" => k.clock = typed(name, value)?,
            "build_time" => k.build_time = number(name, value)?,
            "connect" => k.connect = typed(name, value)?,
            "rx_buffer" => k.rx_buffer = buffer_size(name, value)?,
            "tx_buffer" => k.tx_buffer = buffer_size(name, value)?,
            "log" => k.log = typed(name, value)?,
            "publish" => k.publish = typed(name, value)?,
            "subscribe" => k.subscribe = typed(name, value)?,
            "reconnect" => k.reconnect = typed(name, value)?,
            "crash" => k.crash = typed(name, value)?,
            "mqtt_buffer" => k.mqtt_buffer = buffer_size(name, value)?,
            "broker_host" => k.broker_host = host_name(name, value)?,
            "root_der" => k.root_der = typed(name, value)?,
            _ => return Err(DescriptorError::UnknownKnob { name: name.into() }),
        }
        Ok(())
    }

    /// Applies a `knob=value` assignment.
    pub fn apply(&mut self, assignment: &str) -> Result<(), DescriptorError> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| DescriptorError::NotAnAssignment(assignment.into()))?;
        self.set(name.trim(), value.trim())
    }

    /// Every knob as `(name, value)` text, in [`KNOB_NAMES`] order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let k = &self.knobs;
        vec![
            ("name", k.name.clone()),
            ("version", k.version.clone()),
            ("trust", k.trust.to_string()),
            ("anchor", k.anchor.to_string()),
            ("ca", k.ca.to_string()),
            ("fallback", k.fallback.to_string()),
            ("clock", k.clock.to_string()),
            ("build_time", k.build_time.to_string()),
            ("connect", k.connect.to_string()),
            ("rx_buffer", k.rx_buffer.to_string()),
            ("tx_buffer", k.tx_buffer.to_string()),
            ("log", k.log.to_string()),
            ("publish", k.publish.to_string()),
            ("subscribe", k.subscribe.to_string()),
            ("reconnect", k.reconnect.to_string()),
            ("crash", k.crash.to_string()),
            ("mqtt_buffer", k.mqtt_buffer.to_string()),
            ("broker_host", k.broker_host.clone()),
            ("root_der", k.root_der.to_string()),
        ]
    }

    /// The bytes stored in the image: magic, a little-endian u16 length, then
    /// `key=value` lines (text, so `strings` on an image shows them).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("variant={}\n", self.variant);
        for (name, value) in self.entries() {
            text.push_str(&format!("{name}={value}\n"));
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// Finds and decodes a descriptor anywhere in `data` (an image's segments).
    pub fn decode(data: &[u8]) -> Result<Descriptor, DescriptorError> {
        let at = data
            .windows(MAGIC.len())
            .position(|w| w == MAGIC)
            .ok_or(DescriptorError::Missing)?;
        let rest = &data[at + MAGIC.len()..];
        let len = rest.get(..2).ok_or(DescriptorError::Corrupt)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        let text = rest.get(2..2 + len).ok_or(DescriptorError::Corrupt)?;
        let text = std::str::from_utf8(text).map_err(|_| DescriptorError::Corrupt)?;
        let mut descriptor = Descriptor {
            variant: "custom".into(),
            knobs: Knobs::default(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match line.split_once('=') {
                // Trimmed like every value: a CR or space kept at the end would not
                // survive `encode` and `decode` again.
                Some(("variant", v)) => descriptor.variant = v.trim().to_owned(),
                _ => descriptor.apply(line)?,
            }
        }
        Ok(descriptor)
    }
}

/// A broker host as a sketch compiles it in: a DNS name (labels of letters,
/// digits and hyphens, at most 253 characters), or an IPv4 address, which a
/// firmware that dials its broker by address has.
fn host_name(name: &str, value: &str) -> Result<String, DescriptorError> {
    if let Ok(ip) = value.parse::<std::net::Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    let host = value.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let all_digits = host
        .split('.')
        .next_back()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) || all_digits {
        return Err(DescriptorError::BadValue {
            name: name.into(),
            value: value.into(),
            valid: "a DNS name (labels of letters, digits and hyphens) or an IPv4 address".into(),
        });
    }
    Ok(host)
}

fn buffer_size(name: &str, value: &str) -> Result<usize, DescriptorError> {
    let n = number(name, value)?;
    // The ESP8266 core clamps setBufferSizes to 512..16384; refuse rather than
    // silently clamp, so a descriptor says what the firmware really does.
    let range = if name == "mqtt_buffer" {
        16..=65_535
    } else {
        512..=16_384
    };
    if !range.contains(&n) {
        return Err(DescriptorError::BadValue {
            name: name.into(),
            value: value.into(),
            valid: format!("{} to {} bytes", range.start(), range.end()),
        });
    }
    Ok(n as usize)
}

knob_enum!(
    /// The firmware variants of the catalogue: the reference and the mutants the
    /// shipped scenarios must catch. Each one's doc says which field mistake it
    /// reproduces.
    Variant {
        /// The reference firmware.
        Reference => "reference",
        /// `setInsecure()`.
        Insecure => "insecure",
        /// Pins the leaf's SHA-1.
        Fingerprint => "fingerprint",
        /// Pins the server's public key.
        KnownKey => "known-key",
        /// `allowSelfSignedCerts()`.
        SelfSignedOk => "self-signed-ok",
        /// Trusts the intermediate instead of the root.
        IntermediateAnchor => "intermediate-anchor",
        /// Never runs SNTP: the clock is 1970 + uptime.
        NoNtp => "no-ntp",
        /// Uses a clock fixed at build time.
        StaleClock => "stale-clock",
        /// Connects by IP: no SNI, no name check.
        ConnectByIp => "connect-by-ip",
        /// Shrinks the receive buffer to 512 bytes without checking MFLN support.
        SmallBuffers => "small-buffers",
        /// The CA never parses.
        MalformedCa => "malformed-ca",
        /// Free-form log lines of the forum-post kind.
        SeedStyleLogs => "seed-style-logs",
        /// Publishes on every loop turn.
        PublishFlood => "publish-flood",
        /// Reconnects without delay.
        NoBackoff => "no-backoff",
        /// Calls `setInsecure()` after a failed TLS connection, the forum "fix"
        /// for an error it never read: the first attempt is refused as it should
        /// be, every later one trusts anybody.
        FallbackInsecure => "fallback-insecure",
        /// Subscribes after the first connection only: after a reconnect the
        /// broker has forgotten the subscription and commands stop arriving,
        /// while telemetry looks healthy.
        NoResubscribe => "no-resubscribe",
        /// A 2048-byte receive buffer: enough for the handshake (BearSSL streams
        /// it), too small for a 4 KB command from a broker that ignores
        /// max_fragment_length, which fails with BearSSL error 6 on that record.
        MediumBuffers => "medium-buffers",
        /// Dereferences a null pointer right after its first MQTT connection:
        /// `Exception (28)`, a postmortem dump and a reboot, over and over.
        CrashAfterConnect => "crash-after-connect",
    }
);

impl Variant {
    /// The knob settings that make this variant, on top of the defaults.
    pub const fn settings(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Variant::Reference => &[],
            Variant::Insecure => &[("trust", "insecure")],
            Variant::Fingerprint => &[("trust", "fingerprint")],
            Variant::KnownKey => &[("trust", "known-key")],
            Variant::SelfSignedOk => &[("trust", "self-signed")],
            Variant::IntermediateAnchor => &[("anchor", "issuer")],
            Variant::NoNtp => &[("clock", "uptime")],
            Variant::StaleClock => &[("clock", "build-time")],
            Variant::ConnectByIp => &[("connect", "ip")],
            Variant::SmallBuffers => &[("rx_buffer", "512")],
            Variant::MalformedCa => &[("ca", "malformed")],
            Variant::SeedStyleLogs => &[("log", "seed")],
            Variant::PublishFlood => &[("publish", "every-loop")],
            Variant::NoBackoff => &[("reconnect", "immediate")],
            Variant::FallbackInsecure => &[("fallback", "insecure")],
            Variant::NoResubscribe => &[("subscribe", "first-connect")],
            Variant::MediumBuffers => &[("rx_buffer", "2048")],
            Variant::CrashAfterConnect => &[("crash", "after-connect")],
        }
    }

    /// The descriptor of this variant.
    pub fn descriptor(self) -> Descriptor {
        let mut descriptor = Descriptor {
            variant: self.as_str().into(),
            knobs: Knobs::default(),
        };
        for (name, value) in self.settings() {
            // The table above only names knobs and values `set` accepts; a test
            // checks every variant.
            let _ = descriptor.set(name, value);
        }
        if self != Variant::Reference {
            descriptor.knobs.name = format!("hil-{}", self.as_str());
        }
        descriptor
    }

    /// Parses a variant name, with the list of valid names in the error.
    pub fn parse(name: &str) -> Result<Variant, DescriptorError> {
        name.parse()
            .map_err(|_| DescriptorError::UnknownVariant(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_applies_cleanly_and_round_trips() {
        for variant in Variant::ALL {
            let mut d = Descriptor {
                variant: variant.as_str().into(),
                knobs: Knobs::default(),
            };
            for (name, value) in variant.settings() {
                d.set(name, value).unwrap();
            }
            let built = variant.descriptor();
            assert_eq!(built.knobs.trust, d.knobs.trust);
            assert_eq!(
                Descriptor::decode(&built.encode()).unwrap(),
                built,
                "{variant}"
            );
        }
    }

    #[test]
    fn variants_differ_from_the_reference() {
        let reference = Variant::Reference.descriptor().knobs;
        for variant in &Variant::ALL[1..] {
            let mut knobs = variant.descriptor().knobs;
            knobs.name = reference.name.clone();
            assert_ne!(knobs, reference, "{variant} is the reference in disguise");
        }
    }

    #[test]
    fn bad_knobs_name_the_problem() {
        let mut d = Variant::Reference.descriptor();
        assert!(matches!(
            d.apply("trust=maybe"),
            Err(DescriptorError::BadValue { .. })
        ));
        assert!(matches!(
            d.apply("colour=red"),
            Err(DescriptorError::UnknownKnob { .. })
        ));
        assert!(matches!(
            d.apply("rx_buffer=1"),
            Err(DescriptorError::BadValue { .. })
        ));
        assert!(matches!(
            d.apply("trust"),
            Err(DescriptorError::NotAnAssignment(_))
        ));
        let message = d.apply("trust=maybe").unwrap_err().to_string();
        assert!(message.contains("anchors, insecure"), "{message}");
    }

    #[test]
    fn a_test_builds_name_and_root_are_knobs_that_round_trip() {
        let mut d = Variant::Reference.descriptor();
        // A certificate's outer SEQUENCE with a long-form length: 0x30 0x82 0x01 0x00.
        let mut der = vec![0x30, 0x82, 0x01, 0x00];
        der.extend(std::iter::repeat_n(0xab, 256));
        let root = CompiledRoot::from_der(der.clone()).unwrap();
        let text = root.to_string();
        assert!(!text.contains(['+', '/', '=']), "{text}");
        d.apply(&format!("root_der={text}")).unwrap();
        d.apply("broker_host=mqtt.team.test").unwrap();
        assert_eq!(d.knobs.root_der.der(), Some(der.as_slice()));
        assert_eq!(Descriptor::decode(&d.encode()).unwrap(), d);
        // The standard alphabet with padding reads the same.
        let standard = base64::engine::general_purpose::STANDARD.encode(&der);
        d.set("root_der", &standard).unwrap();
        assert_eq!(d.knobs.root_der, root);
        // Empty is the production root.
        d.set("root_der", "").unwrap();
        assert_eq!(d.knobs.root_der, CompiledRoot::production());
        assert_eq!(d.knobs.root_der.pem(), None);
    }

    #[test]
    fn a_bad_name_or_root_is_refused_with_what_the_knob_takes() {
        let mut d = Variant::Reference.descriptor();
        for bad in [
            "",
            "mqtt..team.test",
            "-mqtt.team.test",
            "10.0.0.300",
            "mqtt_1.team.test",
        ] {
            let err = d.set("broker_host", bad).unwrap_err().to_string();
            assert!(err.contains("a DNS name"), "{bad}: {err}");
        }
        // A firmware may dial its broker by address.
        d.set("broker_host", "203.0.113.7").unwrap();
        assert_eq!(d.knobs.broker_host, "203.0.113.7");
        for bad in ["not base64!", "AAAA", "MIIB"] {
            let err = d.set("root_der", bad).unwrap_err().to_string();
            assert!(err.contains("DER"), "{bad}: {err}");
        }
        // Bytes after the certificate are no certificate.
        let mut der = vec![0x30, 0x03, 1, 2, 3];
        assert!(CompiledRoot::from_der(der.clone()).is_ok());
        der.push(0);
        assert!(CompiledRoot::from_der(der).is_err());
        let huge = [vec![0x30, 0x83, 0x01, 0x00, 0x00], vec![0; 0x10000]].concat();
        assert!(CompiledRoot::from_der(huge)
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn decode_finds_the_descriptor_inside_other_bytes_and_rejects_garbage() {
        let mut data = vec![0xAA; 100];
        data.extend(Variant::NoBackoff.descriptor().encode());
        data.extend([0u8; 7]);
        assert_eq!(
            Descriptor::decode(&data).unwrap().knobs.reconnect,
            Reconnect::Immediate
        );
        assert_eq!(
            Descriptor::decode(b"nothing here"),
            Err(DescriptorError::Missing)
        );
        let mut cut = Variant::Reference.descriptor().encode();
        cut.truncate(20);
        assert_eq!(Descriptor::decode(&cut), Err(DescriptorError::Corrupt));
    }

    #[test]
    fn parameterised_knobs_compose_encode_and_decode_back() {
        // reference+reconnect=fixed:5s+fallback=insecure-after:2, as a spec does it.
        let mut d = Variant::Reference.descriptor();
        for assignment in
            "reconnect=fixed:5s+fallback=insecure-after:2+crash=wdt-after-connect".split('+')
        {
            d.apply(assignment).unwrap();
        }
        assert_eq!(d.knobs.reconnect, Reconnect::Fixed { ms: 5_000 });
        assert_eq!(d.knobs.fallback, Fallback::InsecureAfter(2));
        assert_eq!(d.knobs.crash, Crash::WdtAfterConnect);
        let decoded = Descriptor::decode(&d.encode()).unwrap();
        assert_eq!(decoded, d);
        let text = String::from_utf8_lossy(&d.encode()).into_owned();
        assert!(text.contains("reconnect=fixed:5s\n"), "{text}");
        assert!(text.contains("fallback=insecure-after:2\n"), "{text}");
        // Milliseconds stay milliseconds; whole seconds read as seconds.
        d.set("reconnect", "fixed:500ms").unwrap();
        assert_eq!(d.knobs.reconnect.to_string(), "fixed:500ms");
        d.set("reconnect", "fixed:2000ms").unwrap();
        assert_eq!(d.knobs.reconnect.to_string(), "fixed:2s");
        assert_eq!(Descriptor::decode(&d.encode()).unwrap(), d);
        // `insecure` is after 1, and reads back as itself.
        d.set("fallback", "insecure-after:1").unwrap();
        assert_eq!(d.knobs.fallback, Fallback::INSECURE);
        assert_eq!(d.knobs.fallback.to_string(), "insecure");
        d.set("crash", "restart-after-connect").unwrap();
        assert_eq!(Descriptor::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn bad_parameters_are_refused_with_the_forms_the_knob_takes() {
        let mut d = Variant::Reference.descriptor();
        for bad in [
            "fixed:",
            "fixed:5",
            "fixed:0s",
            "fixed:-1s",
            "fixed:2days",
            "fixed:25h",
            "fixed:99999999999999999999s",
            "later",
        ] {
            let err = d.set("reconnect", bad).unwrap_err().to_string();
            assert!(err.contains("fixed:<duration>"), "{bad}: {err}");
        }
        for bad in [
            "insecure-after:0",
            "insecure-after:",
            "insecure-after:x",
            "maybe",
        ] {
            let err = d.set("fallback", bad).unwrap_err().to_string();
            assert!(err.contains("insecure-after:<N>"), "{bad}: {err}");
        }
        assert_eq!(d.knobs, Variant::Reference.descriptor().knobs);
    }

    #[test]
    fn a_decoded_variant_survives_encode_and_decode_again() {
        // Found by the `image` fuzz target: a variant line ending in a lone CR kept
        // it, and the CR was then read as part of the line end once written back.
        let text = b"variant=custom-x \r\r\nname=n\n";
        let mut data = MAGIC.to_vec();
        data.extend((text.len() as u16).to_le_bytes());
        data.extend(text);
        let decoded = Descriptor::decode(&data).unwrap();
        assert_eq!(decoded.variant, "custom-x");
        assert_eq!(Descriptor::decode(&decoded.encode()).unwrap(), decoded);
    }
}
