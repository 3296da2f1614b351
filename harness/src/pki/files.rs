//! Writing a profile to disk: the PEM files the lab and the device use, and a
//! manifest a human or a script can read.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::catalogue::Profile;
use super::cert::{pem_bundle, CertificateInfo, PrivateKeyPem};
use super::profile::Expectation;
use super::{PkiError, ProfileId};

/// File names inside a profile's directory.
pub mod file {
    /// The trust anchors the device is provisioned with.
    pub const DEVICE_ANCHORS: &str = "device-anchors.pem";
    /// The chain the broker serves, in order.
    pub const BROKER_CHAIN: &str = "broker-chain.pem";
    /// The broker's private key (mode 0600).
    pub const BROKER_KEY: &str = "broker-key.pem";
    /// The CA the broker trusts for client certificates.
    pub const CLIENT_CA: &str = "client-ca.pem";
    /// A CA that did not issue the device's client certificate.
    pub const FOREIGN_CLIENT_CA: &str = "foreign-client-ca.pem";
    /// The device's client certificate.
    pub const CLIENT_CERT: &str = "client-cert.pem";
    /// The device's client key (mode 0600).
    pub const CLIENT_KEY: &str = "client-key.pem";
    /// The manifest.
    pub const MANIFEST: &str = "manifest.json";
}

/// What `manifest.json` holds. No private key material, ever.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The profile id.
    pub id: ProfileId,
    /// What the broker presents.
    pub description: &'static str,
    /// The name the device connects to.
    pub host: String,
    /// The lab clock the certificates are relative to.
    #[serde(with = "time::serde::rfc3339")]
    pub lab_clock: OffsetDateTime,
    /// The reference firmware's expected outcome and BearSSL code.
    pub expected: ExpectedJson,
    /// Why BearSSL differs from web PKI rules here, if it does.
    pub divergence: Option<&'static str>,
    /// The served chain, in order, with validity windows.
    pub broker_chain: Vec<CertificateInfo>,
    /// The device's trust anchors.
    pub device_anchors: Vec<CertificateInfo>,
    /// Pins of the first served certificate, for the fingerprint and known-key variants.
    pub leaf: LeafPins,
    /// The device's client certificate.
    pub client_cert: CertificateInfo,
}

/// The expectation in manifest form (numbers and names spelled out).
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedJson {
    /// connects or refuses.
    pub outcome: super::Outcome,
    /// BearSSL's error number.
    pub bearssl_code: u32,
    /// Its symbolic name.
    pub bearssl_name: Option<&'static str>,
    /// What web PKI rules decide.
    pub web_pki: super::Outcome,
}

impl From<Expectation> for ExpectedJson {
    fn from(e: Expectation) -> Self {
        ExpectedJson {
            outcome: e.outcome,
            bearssl_code: e.bearssl_code.get(),
            bearssl_name: e.bearssl_code.name(),
            web_pki: e.web_pki,
        }
    }
}

/// Pins of the leaf.
#[derive(Debug, Clone, Serialize)]
pub struct LeafPins {
    /// SHA-1 of the leaf DER, lowercase hex.
    pub sha1: String,
    /// SHA-1 of the leaf's SubjectPublicKeyInfo DER, lowercase hex.
    pub public_key_sha1: String,
    /// The leaf's public key as PEM (what setKnownKey takes).
    pub public_key_pem: String,
}

impl Profile {
    /// The manifest describing this profile.
    pub fn manifest(&self) -> Result<Manifest, PkiError> {
        let infos = |certs: &[super::Certificate]| {
            certs
                .iter()
                .map(|c| c.info())
                .collect::<Result<Vec<_>, _>>()
        };
        let leaf = self
            .broker_chain()
            .first()
            .ok_or(PkiError::EmptyChain { id: self.id() })?;
        let spki = leaf.public_key_der()?;
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        Ok(Manifest {
            id: self.id(),
            description: self.id().description(),
            host: self.host().to_owned(),
            lab_clock: self.at(),
            expected: self.id().expectation().into(),
            divergence: self.id().divergence(),
            broker_chain: infos(self.broker_chain())?,
            device_anchors: infos(self.device_anchors())?,
            leaf: LeafPins {
                sha1: hex::encode(leaf.sha1()),
                public_key_sha1: hex::encode(openssl::sha::sha1(&spki)),
                public_key_pem: pem::encode_config(&pem::Pem::new("PUBLIC KEY", spki), config),
            },
            client_cert: self.client_auth().device_cert.info()?,
        })
    }

    /// Writes the profile into `out/<id>/` and returns that directory.
    ///
    /// Private keys are created with mode 0600 before any byte is written, so they
    /// are never readable by others, not even briefly.
    pub fn write_to(&self, out: &Path) -> Result<PathBuf, PkiError> {
        let dir = out.join(self.id().as_str());
        fs::create_dir_all(&dir).map_err(|source| PkiError::Write {
            path: dir.clone(),
            source,
        })?;
        let client = self.client_auth();
        write_public(
            &dir.join(file::DEVICE_ANCHORS),
            &pem_bundle(self.device_anchors()),
        )?;
        write_public(
            &dir.join(file::BROKER_CHAIN),
            &pem_bundle(self.broker_chain()),
        )?;
        write_secret(&dir.join(file::BROKER_KEY), self.broker_key())?;
        write_public(&dir.join(file::CLIENT_CA), &client.ca.pem())?;
        write_public(&dir.join(file::FOREIGN_CLIENT_CA), &client.foreign_ca.pem())?;
        write_public(&dir.join(file::CLIENT_CERT), &client.device_cert.pem())?;
        write_secret(&dir.join(file::CLIENT_KEY), &client.device_key)?;
        let manifest =
            serde_json::to_string_pretty(&self.manifest()?).map_err(|e| PkiError::Write {
                path: dir.join(file::MANIFEST),
                source: e.into(),
            })?;
        write_public(&dir.join(file::MANIFEST), &(manifest + "\n"))?;
        Ok(dir)
    }
}

pub(crate) fn write_public(path: &Path, text: &str) -> Result<(), PkiError> {
    fs::write(path, text).map_err(|source| PkiError::Write {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn write_secret(path: &Path, key: &PrivateKeyPem) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its old mode through open(); tighten it first.
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(key.expose().as_bytes()).map_err(err)
}
