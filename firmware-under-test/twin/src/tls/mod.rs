//! The twin's TLS client: real BearSSL, configured like `BearSSL::WiFiClientSecure`.
//!
//! What the ESP8266 core does and the twin reproduces:
//! - five exclusive certificate modes ([`TrustMode`]); the last setter wins on the
//!   device, so here it is one enum value;
//! - SNI and the name check only when connecting by host name;
//! - the device clock passed explicitly ([`TlsConfig::device_time`]); host BearSSL
//!   never reads the host clock;
//! - receive/transmit buffer sizes, from which BearSSL derives the
//!   max_fragment_length it asks for (the defaults ask for 512);
//! - TLS 1.0 to 1.2 and BearSSL's full client suite list;
//! - no alert on rejection: a failed handshake leaves the socket as it is;
//! - a 15 s limit on every blocking run of the engine ([`TLS_TIMEOUT_MS`]): a
//!   peer that stalls mid-handshake fails the connection with the engine's last
//!   error (0 when nothing went wrong but silence).
//!
//! ```no_run
//! use hil_twin::tls::{TlsClient, TlsConfig, TrustMode};
//!
//! # async fn demo(anchor_der: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let config = TlsConfig {
//!     server_name: Some("broker.hil.test".into()),
//!     device_time: 1_780_000_000,
//!     ..TlsConfig::new(TrustMode::TrustAnchors(vec![anchor_der]))
//! };
//! let mut socket = tokio::net::TcpStream::connect("127.0.0.1:8883").await?;
//! let mut tls = TlsClient::new(&config)?;
//! match tls.handshake(&mut socket).await {
//!     Ok(session) => println!("connected with {}", session.suite_name()),
//!     Err(failure) => println!("[tls] error code={}", failure.code()),
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

mod client;
mod engine;
mod ffi;
mod names;
mod spki;

pub use client::{Session, TlsClient, TlsFailure};
pub use engine::SetupError;
pub use names::{error_name, suite_name, version_name};
pub use spki::{KnownKey, SpkiError};

/// How the device decides whether to trust the server (one of the five
/// `WiFiClientSecure` modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustMode {
    /// `setTrustAnchors`: X.509 validation against these anchors (DER), with the
    /// device clock and, when connecting by name, the name check.
    TrustAnchors(Vec<Vec<u8>>),
    /// `setInsecure`: no check at all.
    Insecure,
    /// `setFingerprint`: the SHA-1 of the leaf DER must match.
    Fingerprint([u8; 20]),
    /// `setKnownKey`: the certificate is ignored; the server key must be this one.
    KnownKey(KnownKey),
    /// `allowSelfSignedCerts`: accepts a leaf whose issuer DN equals its subject DN,
    /// without checking its signature.
    SelfSigned,
}

/// A TLS protocol version BearSSL can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
}

impl TlsVersion {
    pub(crate) fn wire(self) -> u32 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
        }
    }
}

/// A client certificate chain and its private key (PKCS#8 or raw, DER).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Certificates, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// The private key, DER.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Everything the device sets on its `WiFiClientSecure` before `connect()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate checking.
    pub mode: TrustMode,
    /// `Some(host)` when connecting by name (SNI sent, name checked); `None` when
    /// connecting by IP address (no SNI, no name check).
    pub server_name: Option<String>,
    /// The device's clock, seconds since 1970 (1970 + uptime when never synced).
    pub device_time: u64,
    /// Receive buffer size in bytes (`setBufferSizes` first argument).
    pub recv_buffer: usize,
    /// Transmit buffer size in bytes.
    pub xmit_buffer: usize,
    /// Lowest and highest version offered.
    pub versions: (TlsVersion, TlsVersion),
    /// A client certificate, when provisioned.
    pub client_identity: Option<ClientIdentity>,
    /// How long one blocking run of the engine (the handshake, or one write) may
    /// wait for the peer before giving up with [`TlsFailure::Timeout`].
    pub timeout: Duration,
    /// What the chip's public-key work costs (zero: the host's speed).
    pub crypto: crate::pace::CryptoCosts,
}

/// `BR_SSL_BUFSIZE_INPUT`: the ESP8266 core's default receive buffer.
pub const DEFAULT_RECV_BUFFER: usize = 16709;
/// The ESP8266 core's default transmit buffer (512-byte fragments plus overhead).
pub const DEFAULT_XMIT_BUFFER: usize = 597;
/// `WiFiClientSecure`'s `_timeout` in core 3.1.x, milliseconds: `_clear()` raises
/// the 5 s stream default to 15 s because a handshake can take longer, and
/// `_run_until` gives up when one blocking run outlasts it.
pub const TLS_TIMEOUT_MS: u64 = 15_000;

impl TlsConfig {
    /// The ESP8266 core's defaults with the given mode: no SNI yet, clock at 0.
    pub fn new(mode: TrustMode) -> TlsConfig {
        TlsConfig {
            mode,
            server_name: None,
            device_time: 0,
            recv_buffer: DEFAULT_RECV_BUFFER,
            xmit_buffer: DEFAULT_XMIT_BUFFER,
            versions: (TlsVersion::Tls10, TlsVersion::Tls12),
            client_identity: None,
            timeout: Duration::from_millis(TLS_TIMEOUT_MS),
            crypto: crate::pace::Timings::instant().crypto,
        }
    }
}
