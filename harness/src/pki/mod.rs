//! The certificate catalogue: every profile of CATALOGUE.md, generated with rcgen
//! relative to an explicit lab clock.
//!
//! One [`Authorities`] per run holds the keys and CA certificates ("HIL Root" ->
//! "HIL Intermediate A", and the others profiles need); the [`Catalogue`] builds
//! every [`Profile`] from it. A profile knows what the device should trust, what the
//! broker serves (in order), the host name the device connects to, and what the
//! reference firmware is expected to report ([`ProfileId::expectation`]).
//!
//! Time is never read implicitly: an `expired` profile is expired *for the clock it
//! was generated with*.

mod authority;
mod catalogue;
mod cert;
mod der;
mod export;
mod files;
mod keys;
mod names;
mod profile;
mod root;
mod verify;

use std::path::PathBuf;

use time::OffsetDateTime;

pub use authority::Authorities;
pub use catalogue::{Catalogue, CatalogueOptions, ClientAuth, Profile};
pub use cert::{pem_bundle, Certificate, CertificateInfo, PrivateKeyPem};
pub use export::{arduino_header, bearssl_trust_anchors, check_symbol};
pub use files::{file, ExpectedJson, LeafPins, Manifest};
pub use names::BrokerName;
pub use profile::{Expectation, Outcome, ProfileId, UnknownProfile};
pub use root::{RootCa, ROOT_CERT_FILE, ROOT_KEY_FILE};
pub use verify::{verify_web_pki, WebPkiVerdict};

/// The broker's name in the lab.
pub const BROKER_HOST: &str = "broker.hil.test";
/// The NTP server's name in the lab.
pub const NTP_HOST: &str = "ntp.hil.test";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong while generating or writing the catalogue.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum PkiError {
    /// An id that is not in the catalogue.
    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownProfile(#[from] UnknownProfile),
    /// Key generation failed in OpenSSL or rcgen.
    #[error("could not generate a {kind} key")]
    #[diagnostic(code(hil::pki::key_generation))]
    KeyGeneration {
        /// Which kind of key.
        kind: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A key-generation thread panicked.
    #[error("a key-generation thread panicked")]
    #[diagnostic(code(hil::pki::key_generation))]
    KeyGenerationPanicked,
    /// rcgen refused to sign a certificate.
    #[error("could not sign the {what}")]
    #[diagnostic(code(hil::pki::sign))]
    Sign {
        /// Which certificate.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A generated certificate could not be read back.
    #[error("could not inspect a generated certificate")]
    #[diagnostic(code(hil::pki::inspect))]
    Inspect {
        /// OpenSSL's error.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// A certificate was not the DER the catalogue expected to rewrite.
    #[error("unexpected DER structure at byte {offset}")]
    #[diagnostic(code(hil::pki::der))]
    Der {
        /// Where.
        offset: usize,
    },
    /// A validity date does not fit.
    #[error("a certificate date is out of range")]
    #[diagnostic(
        code(hil::pki::time_range),
        help("use a lab clock between 1980 and 9000")
    )]
    TimeOutOfRange,
    /// A profile was asked for that this catalogue does not hold.
    #[error("profile `{id}` was not generated")]
    #[diagnostic(code(hil::pki::not_generated))]
    NotGenerated {
        /// Which profile.
        id: ProfileId,
    },
    /// A profile serves no certificate at all.
    #[error("profile `{id}` serves an empty chain")]
    #[diagnostic(code(hil::pki::empty_chain))]
    EmptyChain {
        /// Which profile.
        id: ProfileId,
    },
    /// A file given as input could not be read.
    #[error("cannot read {}", path.display())]
    #[diagnostic(code(hil::pki::read), help("check the path and its permissions"))]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA certificate that is no PEM (or DER) certificate.
    #[error("{}: not a certificate in PEM form", path.display())]
    #[diagnostic(
        code(hil::pki::ca_parse),
        help("give the CA's certificate as PEM, the text between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----")
    )]
    CaParse {
        /// The file.
        path: PathBuf,
    },
    /// A certificate that cannot issue the catalogue's intermediates.
    #[error("{}: `{subject}` is not a CA certificate: {reason}", path.display())]
    #[diagnostic(
        code(hil::pki::not_a_ca),
        help("a test CA needs basicConstraints CA:TRUE, keyCertSign if it has a key usage, and no path length limit of 0, e.g. `openssl req -x509 -new -key ca-key.pem -subj '/CN=Team Test CA' -days 3650 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem`")
    )]
    NotACa {
        /// The file.
        path: PathBuf,
        /// The certificate's subject.
        subject: String,
        /// What is missing.
        reason: &'static str,
    },
    /// A private key that could not be read.
    #[error("{}: not a private key in PEM form", path.display())]
    #[diagnostic(
        code(hil::pki::key_parse),
        help("give the CA's private key as unencrypted PEM (PKCS#8 `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)")
    )]
    KeyParse {
        /// The file.
        path: PathBuf,
    },
    /// A private key protected by a passphrase.
    #[error("{}: the private key is encrypted", path.display())]
    #[diagnostic(
        code(hil::pki::encrypted_key),
        help("the harness signs without asking for a passphrase: keep a decrypted copy of the test CA's key for the lab, e.g. `openssl pkey -in ca-key.pem -out ca-key-plain.pem` (mode 0600)")
    )]
    EncryptedKey {
        /// The file.
        path: PathBuf,
    },
    /// A key type the catalogue cannot sign with.
    #[error("{}: {kind} cannot sign the catalogue", path.display())]
    #[diagnostic(
        code(hil::pki::unsupported_key),
        help("use an RSA key of 2048 bits or more, or an ECDSA key on P-256 or P-384")
    )]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: String,
    },
    /// An RSA key too short to be trusted.
    #[error("{}: an RSA key of {bits} bits is too short", path.display())]
    #[diagnostic(
        code(hil::pki::weak_key),
        help("use an RSA key of at least 2048 bits (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`)")
    )]
    WeakKey {
        /// The file.
        path: PathBuf,
        /// Its size.
        bits: u32,
    },
    /// A private key that does not belong to the CA certificate.
    #[error("{}: the private key does not match the CA certificate {}", key.display(), cert.display())]
    #[diagnostic(
        code(hil::pki::key_mismatch),
        help("give the key the CA certificate was made from; compare `openssl x509 -in CERT -noout -pubkey` with `openssl pkey -in KEY -pubout`")
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A CA certificate outside its validity at the lab clock.
    #[error("{}: the CA certificate is valid from {} to {}, not at the lab clock {}", path.display(), rfc3339(not_before), rfc3339(not_after), rfc3339(at))]
    #[diagnostic(
        code(hil::pki::ca_not_valid),
        help("choose a lab clock inside the CA's validity, or renew the test CA")
    )]
    CaNotValid {
        /// The file.
        path: PathBuf,
        /// Start of its validity.
        not_before: OffsetDateTime,
        /// End of its validity.
        not_after: OffsetDateTime,
        /// The lab clock.
        at: OffsetDateTime,
    },
    /// A CA subject name the catalogue cannot reproduce byte for byte as an
    /// issuer name (BearSSL matches issuer names by their bytes).
    #[error("{}: the CA's subject name cannot be used as an issuer name: {reason}", path.display())]
    #[diagnostic(
        code(hil::pki::ca_name),
        help("use a test CA whose subject has one attribute per RDN, each type once, in PrintableString, UTF8String or IA5String")
    )]
    CaName {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A broker name that is not a DNS name the catalogue can issue for.
    #[error("`{name}` is not a usable broker name: {reason}")]
    #[diagnostic(
        code(hil::pki::broker_name),
        help("give the DNS name the firmware dials, with at least three labels, e.g. mqtt.example.com")
    )]
    BrokerName {
        /// What was given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A C identifier that is not one.
    #[error("`{given}` is not a C identifier")]
    #[diagnostic(
        code(hil::pki::symbol),
        help(
            "use letters, digits and underscores, not starting with a digit, e.g. HIL_LAB_ROOT_PEM"
        )
    )]
    Symbol {
        /// What was given.
        given: String,
    },
    /// Writing a file failed.
    #[error("could not write {}", path.display())]
    #[diagnostic(
        code(hil::pki::write),
        help("check that the directory is writable and the disk not full")
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A timestamp as RFC 3339 for messages.
pub(crate) fn rfc3339(at: &OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

impl PkiError {
    pub(crate) fn sign<E: std::error::Error + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> PkiError {
        move |source| PkiError::Sign {
            what,
            source: Box::new(source),
        }
    }
}
