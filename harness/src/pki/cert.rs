//! Certificates and private keys as the catalogue hands them out.

use std::fmt;

use openssl::hash::MessageDigest;
use openssl::x509::{X509NameRef, X509};
use serde::Serialize;
use time::OffsetDateTime;

use super::PkiError;

/// One DER certificate with the facts reports and manifests need.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

/// What a manifest says about one certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject DN, as `CN=...` components.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-1 of the DER, lowercase hex (what setFingerprint pins).
    pub sha1: String,
}

impl Certificate {
    pub(crate) fn from_der(der: Vec<u8>) -> Certificate {
        Certificate { der }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM text.
    pub fn pem(&self) -> String {
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        pem::encode_config(&pem::Pem::new("CERTIFICATE", self.der.clone()), config)
    }

    fn parsed(&self) -> Result<X509, PkiError> {
        X509::from_der(&self.der).map_err(|source| PkiError::Inspect { source })
    }

    /// SHA-1 of the DER (the fingerprint `setFingerprint` pins).
    pub fn sha1(&self) -> [u8; 20] {
        use openssl::sha::sha1;
        sha1(&self.der)
    }

    /// The SubjectPublicKeyInfo DER (what `setKnownKey` compares).
    pub fn public_key_der(&self) -> Result<Vec<u8>, PkiError> {
        let x509 = self.parsed()?;
        let key = x509
            .public_key()
            .map_err(|source| PkiError::Inspect { source })?;
        key.public_key_to_der()
            .map_err(|source| PkiError::Inspect { source })
    }

    /// Subject, issuer, validity and fingerprint, read back from the DER.
    pub fn info(&self) -> Result<CertificateInfo, PkiError> {
        let x509 = self.parsed()?;
        let inspect = |source| PkiError::Inspect { source };
        let digest = x509.digest(MessageDigest::sha1()).map_err(inspect)?;
        Ok(CertificateInfo {
            subject: dn(x509.subject_name()),
            issuer: dn(x509.issuer_name()),
            not_before: asn1_to_time(x509.not_before())?,
            not_after: asn1_to_time(x509.not_after())?,
            sha1: hex::encode(digest),
        })
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate(sha1={})", hex::encode(self.sha1()))
    }
}

fn dn(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = String::from_utf8_lossy(e.data().as_slice());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn asn1_to_time(t: &openssl::asn1::Asn1TimeRef) -> Result<OffsetDateTime, PkiError> {
    let inspect = |source| PkiError::Inspect { source };
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(inspect)?;
    let diff = epoch.diff(t).map_err(inspect)?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| PkiError::TimeOutOfRange)
}

/// A private key in PKCS#8 PEM. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub(crate) fn new(pem: String) -> Self {
        PrivateKeyPem(pem)
    }

    /// The PEM text. Secret: write it only to files with mode 0600.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem([redacted])")
    }
}

/// Concatenated PEM of several certificates, in order.
pub fn pem_bundle<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> String {
    certs.into_iter().map(Certificate::pem).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_do_not_leak_through_debug() {
        // Built in two parts so no key-looking text is committed.
        let key = PrivateKeyPem::new(concat!("-----BEGIN ", "PRIVATE KEY-----\nsecret").into());
        assert!(!format!("{key:?}").contains("secret"));
    }
}
