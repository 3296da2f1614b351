//! The root every good profile chains to: the lab's own "HIL Root", generated
//! for a run (or once, kept, and compiled into a test build), or a team's own
//! test CA.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::x509::{X509KeyUsage, X509};
use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyIdMethod, KeyUsagePurpose};
use time::OffsetDateTime;

use super::authority::{ca_params, self_signed, Authority};
use super::cert::{Certificate, PrivateKeyPem};
use super::der;
use super::keys::{Key, KeyKind, MIN_RSA_BITS};
use super::PkiError;

/// The file name a root certificate is kept under (`hil pki export`).
pub const ROOT_CERT_FILE: &str = "lab-root.pem";
/// The file name its private key is kept under, mode 0600.
pub const ROOT_KEY_FILE: &str = "lab-root-key.pem";

/// A certificate authority the catalogue is rooted in, with its private key.
///
/// Either a new "HIL Root" ([`RootCa::generate`]) or a CA brought from outside
/// ([`RootCa::load`]), checked to be a CA whose key matches and which BearSSL
/// and the catalogue can use. "Evil Root" and the client CAs always stay the
/// lab's own.
///
/// ```
/// use hil::pki::{Catalogue, CatalogueOptions, ProfileId, RootCa};
/// use std::sync::Arc;
/// use time::macros::datetime;
///
/// let at = datetime!(2026-06-01 12:00 UTC);
/// let root = Arc::new(RootCa::generate(at)?);
/// let options = CatalogueOptions::default().with_root(root.clone());
/// let catalogue = Catalogue::generate_with(at, &options)?;
/// let valid = catalogue.profile(ProfileId::Valid)?;
/// assert_eq!(valid.device_anchors(), std::slice::from_ref(root.certificate()));
/// # Ok::<(), hil::Error>(())
/// ```
pub struct RootCa {
    authority: Authority,
    origin: PathBuf,
}

impl fmt::Debug for RootCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCa")
            .field("certificate", &self.authority.cert)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RootCa {
    /// A new "HIL Root" (RSA-2048), valid from five years before `at` to twenty
    /// after.
    pub fn generate(at: OffsetDateTime) -> Result<RootCa, PkiError> {
        let key = Key::generate(KeyKind::Rsa2048)?;
        let years = |n: i64| time::Duration::days(365 * n);
        let params = ca_params("HIL Root", at - years(5), at + years(20), None)?;
        Ok(RootCa {
            authority: self_signed(params, Arc::new(key))?,
            origin: PathBuf::from("HIL Root"),
        })
    }

    /// Reads a CA certificate (PEM or DER) and its private key (unencrypted PEM)
    /// and checks them: see [`RootCa::from_pem`].
    pub fn load(cert: &Path, key: &Path) -> Result<RootCa, PkiError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| PkiError::Read {
                path: path.to_owned(),
                source,
            })
        };
        RootCa::from_pem(&read(cert)?, &read(key)?, cert, key)
    }

    /// Checks a CA certificate and its key; `cert_origin` and `key_origin` name
    /// them in errors. Refused: a certificate that is not a CA (no
    /// basicConstraints CA:TRUE, a key usage without keyCertSign, a path length
    /// limit of 0), a key that does not match it, an RSA key under 2048 bits, a
    /// key type other than RSA, P-256 or P-384, an encrypted key, a subject name
    /// that cannot be repeated byte for byte as an issuer name.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_origin: &Path,
        key_origin: &Path,
    ) -> Result<RootCa, PkiError> {
        let cert = parse_certificate(cert_pem, cert_origin)?;
        let x509 = X509::from_der(cert.der()).map_err(|_| PkiError::CaParse {
            path: cert_origin.to_owned(),
        })?;
        let subject = cert
            .info()
            .map(|i| i.subject)
            .unwrap_or_else(|_| "?".into());
        let not_a_ca = |reason| PkiError::NotACa {
            path: cert_origin.to_owned(),
            subject: subject.clone(),
            reason,
        };
        let der_error = |_| PkiError::CaParse {
            path: cert_origin.to_owned(),
        };
        let fields = der::tbs_fields(cert.der()).map_err(der_error)?;
        let constraints = fields
            .extensions
            .iter()
            .find(|(oid, _, _)| oid == der::OID_BASIC_CONSTRAINTS)
            .ok_or_else(|| not_a_ca("it has no basicConstraints extension"))?;
        let (is_ca, path_len) =
            der::basic_constraints(cert.der(), constraints.2.clone()).map_err(der_error)?;
        if !is_ca {
            return Err(not_a_ca("its basicConstraints say CA:FALSE"));
        }
        if path_len == Some(0) {
            return Err(not_a_ca(
                "its path length limit of 0 forbids the intermediates the catalogue issues under it",
            ));
        }
        if x509
            .key_usage()
            .is_some_and(|ku| !ku.contains(X509KeyUsage::KEY_CERT_SIGN))
        {
            return Err(not_a_ca("its key usage lacks keyCertSign"));
        }
        check_public_key(&x509, cert_origin)?;

        let key = Key::import_pem(key_pem, key_origin)?;
        let public = x509.public_key().map_err(|_| PkiError::CaParse {
            path: cert_origin.to_owned(),
        })?;
        let private = key.openssl()?;
        if !public.public_eq(&private) {
            return Err(PkiError::KeyMismatch {
                cert: cert_origin.to_owned(),
                key: key_origin.to_owned(),
            });
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(cert.der(), fields.subject.clone())
            .map_err(|reason| PkiError::CaName {
                path: cert_origin.to_owned(),
                reason,
            })?;
        if let Some(ski) = x509.subject_key_id() {
            // Intermediates then carry the CA's own key identifier as their AKI.
            params.key_identifier_method = KeyIdMethod::PreSpecified(ski.as_slice().to_vec());
        }
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let subject_bytes = cert.der()[fields.subject].to_vec();
        let root = RootCa {
            authority: Authority::external(cert, params, Arc::new(key)),
            origin: cert_origin.to_owned(),
        };
        root.check_issuer_name(&subject_bytes)?;
        Ok(root)
    }

    /// The CA certificate (what devices trust).
    pub fn certificate(&self) -> &Certificate {
        &self.authority.cert
    }

    /// The private key. Secret: write it only to files with mode 0600.
    pub fn private_key(&self) -> PrivateKeyPem {
        PrivateKeyPem::new(self.authority.key.pkcs8_pem())
    }

    /// Writes `lab-root.pem` and `lab-root-key.pem` (mode 0600) into `dir`, and
    /// returns their paths.
    pub fn write_to(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let cert = dir.join(ROOT_CERT_FILE);
        let key = dir.join(ROOT_KEY_FILE);
        super::files::write_public(&cert, &self.certificate().pem())?;
        super::files::write_secret(&key, &self.private_key())?;
        Ok((cert, key))
    }

    /// Refuses a lab clock outside the CA's validity: every chain under it
    /// would be refused for a reason no profile stands for.
    pub(crate) fn check_valid_at(&self, at: OffsetDateTime) -> Result<(), PkiError> {
        let info = self.certificate().info()?;
        if at < info.not_before || at > info.not_after {
            return Err(PkiError::CaNotValid {
                path: self.origin.clone(),
                not_before: info.not_before,
                not_after: info.not_after,
                at,
            });
        }
        Ok(())
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Signs a throwaway certificate and compares its issuer name with the CA's
    /// subject, byte for byte: BearSSL links a chain by those bytes.
    fn check_issuer_name(&self, subject: &[u8]) -> Result<(), PkiError> {
        let probe = CertificateParams::default();
        let dummy = Key::generate(KeyKind::EcdsaP256)?;
        let cert = probe
            .signed_by(&dummy.pair, &self.authority.issuer())
            .map_err(PkiError::sign("issuer-name probe"))?;
        let der = cert.der().to_vec();
        let fields = der::tbs_fields(&der)?;
        if &der[fields.issuer] != subject {
            return Err(PkiError::CaName {
                path: self.origin.clone(),
                reason: "re-encoding it changes its bytes".into(),
            });
        }
        Ok(())
    }
}

/// The first certificate of a PEM text, or DER bytes.
fn parse_certificate(bytes: &[u8], origin: &Path) -> Result<Certificate, PkiError> {
    let bad = || PkiError::CaParse {
        path: origin.to_owned(),
    };
    if bytes.first() == Some(&0x30) {
        return X509::from_der(bytes)
            .map(|_| Certificate::from_der(bytes.to_vec()))
            .map_err(|_| bad());
    }
    let blocks = pem::parse_many(bytes).map_err(|_| bad())?;
    let block = blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or_else(bad)?;
    X509::from_der(block.contents()).map_err(|_| bad())?;
    Ok(Certificate::from_der(block.into_contents()))
}

/// The certificate's own key must be one BearSSL verifies with and strong
/// enough to mean something.
fn check_public_key(x509: &X509, origin: &Path) -> Result<(), PkiError> {
    let key = x509.public_key().map_err(|_| PkiError::CaParse {
        path: origin.to_owned(),
    })?;
    match key.id() {
        openssl::pkey::Id::RSA if key.bits() < MIN_RSA_BITS => Err(PkiError::WeakKey {
            path: origin.to_owned(),
            bits: key.bits(),
        }),
        openssl::pkey::Id::RSA | openssl::pkey::Id::EC => Ok(()),
        other => Err(PkiError::UnsupportedKey {
            path: origin.to_owned(),
            kind: format!("a certificate for a key of type {other:?}"),
        }),
    }
}

/// The subject Name as rcgen values that encode to the same bytes, or why not.
fn distinguished_name(
    der: &[u8],
    subject: std::ops::Range<usize>,
) -> Result<DistinguishedName, String> {
    let malformed = |_| "it is not well-formed DER".to_owned();
    let name = der::read(der, subject.start, subject.end).map_err(malformed)?;
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in der::children(der, name.content).map_err(malformed)? {
        let attributes = der::children(der, rdn.content.clone()).map_err(malformed)?;
        let [attribute] = attributes.as_slice() else {
            return Err(format!(
                "a relative name holds {} attributes",
                attributes.len()
            ));
        };
        let parts = der::children(der, attribute.content.clone()).map_err(malformed)?;
        let [oid, value] = parts.as_slice() else {
            return Err("an attribute is not a type and a value".into());
        };
        let arcs = der::oid_arcs(&der[oid.content.clone()])
            .ok_or_else(|| "an attribute type is not a valid OID".to_owned())?;
        let dotted = arcs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        if seen.contains(&arcs) {
            return Err(format!("the attribute {dotted} appears twice"));
        }
        seen.push(arcs.clone());
        let bytes = der[value.content.clone()].to_vec();
        let text = || String::from_utf8(bytes.clone()).map_err(|_| format!("{dotted} is not text"));
        let unusable = |_| format!("the value of {dotted} does not fit its string type");
        let value = match value.tag {
            0x0c => DnValue::Utf8String(text()?),
            0x13 => DnValue::PrintableString(PrintableString::try_from(text()?).map_err(unusable)?),
            0x16 => DnValue::Ia5String(Ia5String::try_from(text()?).map_err(unusable)?),
            0x14 => DnValue::TeletexString(TeletexString::try_from(text()?).map_err(unusable)?),
            0x1e => DnValue::BmpString(BmpString::from_utf16be(bytes.clone()).map_err(unusable)?),
            0x1c => DnValue::UniversalString(
                UniversalString::from_utf32be(bytes.clone()).map_err(unusable)?,
            ),
            tag => return Err(format!("{dotted} has the ASN.1 type 0x{tag:02x}")),
        };
        dn.push(DnType::CustomDnType(arcs), value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_generated_root_reloads_as_a_team_ca() {
        let at = datetime!(2026-06-01 0:00 UTC);
        let root = RootCa::generate(at).unwrap();
        let key = root.private_key();
        let again = RootCa::from_pem(
            root.certificate().pem().as_bytes(),
            key.expose().as_bytes(),
            Path::new("ca.pem"),
            Path::new("ca-key.pem"),
        )
        .unwrap();
        assert_eq!(again.certificate(), root.certificate());
        again.check_valid_at(at).unwrap();
        let later = at + time::Duration::days(365 * 30);
        assert!(matches!(
            again.check_valid_at(later),
            Err(PkiError::CaNotValid { .. })
        ));
    }

    #[test]
    fn garbage_is_no_certificate() {
        let err = RootCa::from_pem(b"hello", b"", Path::new("x.pem"), Path::new("k.pem"));
        assert!(matches!(err, Err(PkiError::CaParse { .. })), "{err:?}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let root = RootCa::generate(datetime!(2026-06-01 0:00 UTC)).unwrap();
        assert!(!format!("{root:?}").contains("PRIVATE"));
    }
}
