//! BearSSL's error numbers: what `br_ssl_engine_last_error` (and the ESP8266 core's
//! `getLastSSLError()`) reports, with the symbolic name and a short meaning.
//!
//! The device reports a bare number; reports and assertions show both the number
//! and what it means, because "rc=-2" with no reason is exactly what people fight.
//!
//! ```
//! use hil_contract::bearssl::ErrorCode;
//!
//! let code = ErrorCode::new(54);
//! assert_eq!(code.name(), Some("BR_ERR_X509_EXPIRED"));
//! assert_eq!(code.to_string(), "54 (BR_ERR_X509_EXPIRED)");
//! // The received/sent alert bits are folded away, as getLastSSLError() does.
//! assert_eq!(ErrorCode::new(256 + 40).without_alert_bits(), ErrorCode::new(40));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// One BearSSL error number (0 is success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(u32);

/// Added to an alert number when the peer sent us a fatal alert.
const RECV_FATAL_ALERT: u32 = 256;
/// Added to an alert number when BearSSL sent a fatal alert.
const SEND_FATAL_ALERT: u32 = 512;

// Numbers from bearssl_ssl.h and bearssl_x509.h (BearSSL 0.6), kept in one table so
// names and meanings cannot drift apart.
const TABLE: &[(u32, &str, &str)] = &[
    (0, "BR_ERR_OK", "no error"),
    (
        1,
        "BR_ERR_BAD_PARAM",
        "caller-provided parameter is incorrect",
    ),
    (
        2,
        "BR_ERR_BAD_STATE",
        "operation requested by the caller cannot be applied now",
    ),
    (
        3,
        "BR_ERR_UNSUPPORTED_VERSION",
        "the peer's protocol version is not supported",
    ),
    (
        4,
        "BR_ERR_BAD_VERSION",
        "record version differs from the negotiated one",
    ),
    (5, "BR_ERR_BAD_LENGTH", "record length is invalid"),
    (
        6,
        "BR_ERR_TOO_LARGE",
        "record is larger than the receive buffer (max fragment length ignored?)",
    ),
    (7, "BR_ERR_BAD_MAC", "record MAC did not verify"),
    (8, "BR_ERR_NO_RANDOM", "no initial entropy for the PRNG"),
    (9, "BR_ERR_UNKNOWN_TYPE", "unknown record type"),
    (10, "BR_ERR_UNEXPECTED", "unexpected message from the peer"),
    (
        12,
        "BR_ERR_BAD_CCS",
        "ChangeCipherSpec message from the peer is invalid",
    ),
    (
        13,
        "BR_ERR_BAD_ALERT",
        "alert message from the peer is invalid",
    ),
    (
        14,
        "BR_ERR_BAD_HANDSHAKE",
        "incoming handshake message could not be decoded",
    ),
    (15, "BR_ERR_OVERSIZED_ID", "session ID is too long"),
    (
        16,
        "BR_ERR_BAD_CIPHER_SUITE",
        "server chose a cipher suite the client did not offer",
    ),
    (
        17,
        "BR_ERR_BAD_COMPRESSION",
        "server chose an unsupported compression",
    ),
    (
        18,
        "BR_ERR_BAD_FRAGLEN",
        "server answered with a max fragment length the client did not ask for",
    ),
    (19, "BR_ERR_BAD_SECRENEG", "secure renegotiation failed"),
    (
        20,
        "BR_ERR_EXTRA_EXTENSION",
        "server sent an extension the client did not offer",
    ),
    (21, "BR_ERR_BAD_SNI", "invalid Server Name Indication"),
    (22, "BR_ERR_BAD_HELLO_DONE", "invalid ServerHelloDone"),
    (23, "BR_ERR_LIMIT_EXCEEDED", "internal limit exceeded"),
    (24, "BR_ERR_BAD_FINISHED", "Finished message did not verify"),
    (
        25,
        "BR_ERR_RESUME_MISMATCH",
        "session resumption with mismatched parameters",
    ),
    (
        26,
        "BR_ERR_INVALID_ALGORITHM",
        "unsupported or invalid algorithm",
    ),
    (
        27,
        "BR_ERR_BAD_SIGNATURE",
        "ServerKeyExchange signature did not verify",
    ),
    (
        28,
        "BR_ERR_WRONG_KEY_USAGE",
        "peer key usage forbids this use",
    ),
    (
        29,
        "BR_ERR_NO_CLIENT_AUTH",
        "server asked for a client certificate the client does not have",
    ),
    (31, "BR_ERR_IO", "I/O error or premature close"),
    (32, "BR_ERR_X509_OK", "certificate validation succeeded"),
    (
        33,
        "BR_ERR_X509_INVALID_VALUE",
        "invalid value in an ASN.1 structure",
    ),
    (34, "BR_ERR_X509_TRUNCATED", "truncated certificate"),
    (35, "BR_ERR_X509_EMPTY_CHAIN", "empty certificate chain"),
    (
        36,
        "BR_ERR_X509_INNER_TRUNC",
        "inner element extends beyond its outer element",
    ),
    (37, "BR_ERR_X509_BAD_TAG_CLASS", "unsupported tag class"),
    (38, "BR_ERR_X509_BAD_TAG_VALUE", "unsupported tag value"),
    (39, "BR_ERR_X509_INDEFINITE_LENGTH", "indefinite length"),
    (40, "BR_ERR_X509_EXTRA_ELEMENT", "extraneous element"),
    (41, "BR_ERR_X509_UNEXPECTED", "unexpected element"),
    (
        42,
        "BR_ERR_X509_NOT_CONSTRUCTED",
        "expected a constructed element",
    ),
    (
        43,
        "BR_ERR_X509_NOT_PRIMITIVE",
        "expected a primitive element",
    ),
    (
        44,
        "BR_ERR_X509_PARTIAL_BYTE",
        "BIT STRING length is not a multiple of 8",
    ),
    (45, "BR_ERR_X509_BAD_BOOLEAN", "invalid BOOLEAN"),
    (46, "BR_ERR_X509_OVERFLOW", "value out of range"),
    (47, "BR_ERR_X509_BAD_DN", "invalid distinguished name"),
    (48, "BR_ERR_X509_BAD_TIME", "invalid date/time"),
    (
        49,
        "BR_ERR_X509_UNSUPPORTED",
        "unsupported feature (algorithm, hash)",
    ),
    (
        50,
        "BR_ERR_X509_LIMIT_EXCEEDED",
        "key or name larger than supported",
    ),
    (
        51,
        "BR_ERR_X509_WRONG_KEY_TYPE",
        "key type does not match the signature algorithm",
    ),
    (
        52,
        "BR_ERR_X509_BAD_SIGNATURE",
        "certificate signature did not verify",
    ),
    (53, "BR_ERR_X509_TIME_UNKNOWN", "validation time is unknown"),
    (
        54,
        "BR_ERR_X509_EXPIRED",
        "certificate expired or not yet valid (check the device clock)",
    ),
    (
        55,
        "BR_ERR_X509_DN_MISMATCH",
        "issuer/subject DN mismatch in the chain",
    ),
    (
        56,
        "BR_ERR_X509_BAD_SERVER_NAME",
        "certificate does not match the expected server name",
    ),
    (
        57,
        "BR_ERR_X509_CRITICAL_EXTENSION",
        "unknown critical extension",
    ),
    (
        58,
        "BR_ERR_X509_NOT_CA",
        "an issuing certificate is not a CA",
    ),
    (
        59,
        "BR_ERR_X509_FORBIDDEN_KEY_USAGE",
        "key usage forbids this use",
    ),
    (60, "BR_ERR_X509_WEAK_PUBLIC_KEY", "public key is too weak"),
    (
        62,
        "BR_ERR_X509_NOT_TRUSTED",
        "chain does not reach a trust anchor",
    ),
];

impl ErrorCode {
    /// Success: the handshake completed.
    pub const OK: ErrorCode = ErrorCode(0);

    /// Wraps a raw number as the device reported it.
    pub const fn new(raw: u32) -> Self {
        ErrorCode(raw)
    }

    /// The raw number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The number with the received/sent fatal-alert offsets removed, the way the
    /// ESP8266 core's `getLastSSLError()` reports it.
    pub const fn without_alert_bits(self) -> Self {
        if self.0 >= SEND_FATAL_ALERT {
            ErrorCode(self.0 - SEND_FATAL_ALERT)
        } else if self.0 >= RECV_FATAL_ALERT {
            ErrorCode(self.0 - RECV_FATAL_ALERT)
        } else {
            self
        }
    }

    fn entry(self) -> Option<&'static (u32, &'static str, &'static str)> {
        TABLE.iter().find(|(n, _, _)| *n == self.0)
    }

    /// BearSSL's symbolic name, when the number is one BearSSL defines.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|(_, name, _)| *name)
    }

    /// A short human explanation, when the number is one BearSSL defines.
    pub fn meaning(self) -> Option<&'static str> {
        if self.0 >= SEND_FATAL_ALERT {
            return Some("BearSSL sent a fatal alert");
        }
        if self.0 >= RECV_FATAL_ALERT {
            return Some("the peer sent a fatal alert");
        }
        self.entry().map(|(_, _, meaning)| *meaning)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_code_has_a_name_and_meaning() {
        for raw in [0, 6, 49, 52, 54, 56, 57, 58, 62] {
            let code = ErrorCode::new(raw);
            assert!(code.name().is_some(), "{raw} has no name");
            assert!(code.meaning().is_some(), "{raw} has no meaning");
        }
    }

    #[test]
    fn alert_bits_are_reported_as_alerts() {
        assert_eq!(
            ErrorCode::new(256 + 42).meaning(),
            Some("the peer sent a fatal alert")
        );
        assert_eq!(ErrorCode::new(512 + 40).without_alert_bits().get(), 40);
        assert_eq!(ErrorCode::new(999).to_string(), "999");
    }
}
