//! The run's certificate authorities and long-lived keys, generated once and reused
//! by every profile: "HIL Root" -> "HIL Intermediate A" -> leaf, and the others a
//! profile needs (a second intermediate, an impostor root, the client CA).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::catalogue::CatalogueOptions;
use super::cert::Certificate;
use super::keys::{generate_all, Key, KeyKind};
use super::names::Names;
use super::PkiError;

/// One certificate authority: its certificate, the parameters it was made from (an
/// rcgen issuer needs them) and its key.
pub(crate) struct Authority {
    pub(crate) cert: Certificate,
    params: CertificateParams,
    pub(crate) key: std::sync::Arc<Key>,
}

impl Authority {
    pub(crate) fn issuer(&self) -> Issuer<'_, &rcgen::KeyPair> {
        Issuer::from_params(&self.params, &self.key.pair)
    }

    /// An authority made elsewhere: `params` must encode the certificate's
    /// subject name exactly (see `RootCa::from_pem`).
    pub(crate) fn external(
        cert: Certificate,
        params: CertificateParams,
        key: std::sync::Arc<Key>,
    ) -> Authority {
        Authority { cert, params, key }
    }
}

impl Clone for Authority {
    fn clone(&self) -> Authority {
        Authority {
            cert: self.cert.clone(),
            params: self.params.clone(),
            key: self.key.clone(),
        }
    }
}

/// Every authority and shared key of one run, generated relative to one lab clock.
///
/// This is the expensive part of the catalogue (RSA key generation); profiles reuse
/// it. Keep one per run.
pub struct Authorities {
    pub(crate) at: OffsetDateTime,
    /// The names every profile is issued for.
    pub(crate) names: Names,
    pub(crate) root: Authority,
    pub(crate) intermediate_a: Authority,
    /// "HIL Intermediate A" re-issued with the same name and key, already expired.
    pub(crate) intermediate_a_expired: Authority,
    pub(crate) intermediate_b: Authority,
    pub(crate) intermediate_ec: Authority,
    pub(crate) intermediate_large: Authority,
    /// Signed by the root but without CA:TRUE.
    pub(crate) intermediate_not_ca: Authority,
    pub(crate) evil_intermediate: Authority,
    pub(crate) client_ca: Authority,
    pub(crate) foreign_client_ca: Authority,
    /// The broker's key: most leaves reuse it, as a real broker renews certificates.
    pub(crate) broker_key: Key,
    pub(crate) renewed_broker_key: Key,
    pub(crate) large_broker_key: Key,
    pub(crate) ec_broker_key: Key,
    pub(crate) device_key: Key,
}

impl std::fmt::Debug for Authorities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorities")
            .field("at", &self.at)
            .field("broker", &self.names.broker)
            .finish_non_exhaustive()
    }
}

/// A random positive serial number, so re-issued certificates never collide.
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|source| PkiError::Inspect { source })?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01; // positive and never shorter than 16 bytes
    Ok(SerialNumber::from_slice(&bytes))
}

pub(crate) fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "HIL Lab");
    dn.push(DnType::CommonName, cn);
    dn
}

pub(crate) fn ca_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    path_len: Option<u8>,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

pub(crate) fn self_signed(
    params: CertificateParams,
    key: std::sync::Arc<Key>,
) -> Result<Authority, PkiError> {
    let cert = params
        .self_signed(&key.pair)
        .map_err(PkiError::sign("self-signed CA"))?;
    Ok(Authority {
        cert: Certificate::from_der(cert.der().to_vec()),
        params,
        key,
    })
}

fn signed(
    params: CertificateParams,
    key: std::sync::Arc<Key>,
    by: &Authority,
) -> Result<Authority, PkiError> {
    let cert = params
        .signed_by(&key.pair, &by.issuer())
        .map_err(PkiError::sign("intermediate CA"))?;
    Ok(Authority {
        cert: Certificate::from_der(cert.der().to_vec()),
        params,
        key,
    })
}

impl Authorities {
    /// Generates every key and authority certificate, valid around `at`.
    ///
    /// Roots are valid from five years before `at` to twenty after, intermediates
    /// from two years before to five after, so clock scenarios that skew the device
    /// by a few years hit the leaf first.
    pub fn generate(at: OffsetDateTime) -> Result<Authorities, PkiError> {
        Authorities::generate_with(at, &CatalogueOptions::default())
    }

    /// Like [`Authorities::generate`], rooted in `options.root` when given (a
    /// team's test CA, which must be valid at `at`) and issuing for
    /// `options.broker_name` when given.
    pub fn generate_with(
        at: OffsetDateTime,
        options: &CatalogueOptions,
    ) -> Result<Authorities, PkiError> {
        use KeyKind::*;
        if let Some(root) = &options.root {
            root.check_valid_at(at)?;
        }
        // The lab's own root key, unless a team brought theirs, is generated
        // alongside the others.
        let (root_key, keys) = std::thread::scope(|scope| {
            let own = options
                .root
                .is_none()
                .then(|| scope.spawn(|| Key::generate(Rsa2048)));
            let keys = generate_all([
                Rsa2048, Rsa2048, Rsa4096, Rsa2048, Rsa2048, Rsa2048, Rsa2048, EcdsaP256, Rsa2048,
                Rsa2048, Rsa4096, EcdsaP256, Rsa2048,
            ]);
            let own = own
                .map(|h| h.join().unwrap_or(Err(PkiError::KeyGenerationPanicked)))
                .transpose();
            (own, keys)
        });
        let root_key = root_key?;
        let [int_a, int_b, int_large, evil_root, evil_int, client_ca, foreign_ca, int_ec, broker, renewed, large, ec, device] =
            keys?;
        let years = |n: i64| Duration::days(365 * n);
        let (root_from, root_to) = (at - years(5), at + years(20));
        let (int_from, int_to) = (at - years(2), at + years(5));

        let root = match (&options.root, root_key) {
            (Some(team), _) => team.authority().clone(),
            (None, Some(key)) => {
                self_signed(ca_params("HIL Root", root_from, root_to, None)?, key.into())?
            }
            (None, None) => return Err(PkiError::KeyGenerationPanicked),
        };
        let int_a = std::sync::Arc::new(int_a);
        let intermediate_a = signed(
            ca_params("HIL Intermediate A", int_from, int_to, Some(0))?,
            int_a.clone(),
            &root,
        )?;
        let intermediate_a_expired = signed(
            ca_params(
                "HIL Intermediate A",
                at - years(3),
                at - Duration::days(1),
                Some(0),
            )?,
            int_a.clone(),
            &root,
        )?;
        let intermediate_b = signed(
            ca_params("HIL Intermediate B", int_from, int_to, Some(0))?,
            int_b.into(),
            &root,
        )?;
        let intermediate_ec = signed(
            ca_params("HIL Intermediate EC", int_from, int_to, Some(0))?,
            int_ec.into(),
            &root,
        )?;
        let intermediate_large = signed(
            ca_params("HIL Intermediate Large", int_from, int_to, Some(0))?,
            int_large.into(),
            &root,
        )?;
        let mut not_ca = ca_params("HIL Intermediate Not-CA", int_from, int_to, None)?;
        // Only the CA flag is wrong: key usages stay a CA's (keyCertSign), so a
        // verifier refuses it for being no CA, not for its key usage.
        not_ca.is_ca = IsCa::ExplicitNoCa;
        let intermediate_not_ca = signed(not_ca, int_a, &root)?;

        let evil_root = self_signed(
            ca_params("Evil Root", root_from, root_to, None)?,
            evil_root.into(),
        )?;
        let evil_intermediate = signed(
            ca_params("Evil Intermediate", int_from, int_to, Some(0))?,
            evil_int.into(),
            &evil_root,
        )?;
        let client_ca = self_signed(
            ca_params("HIL Client CA", root_from, root_to, None)?,
            client_ca.into(),
        )?;
        let foreign_client_ca = self_signed(
            ca_params("Foreign Client CA", root_from, root_to, None)?,
            foreign_ca.into(),
        )?;

        let names = match &options.broker_name {
            Some(name) => Names::for_broker(name),
            None => Names::lab(),
        };
        Ok(Authorities {
            at,
            names,
            root,
            intermediate_a,
            intermediate_a_expired,
            intermediate_b,
            intermediate_ec,
            intermediate_large,
            intermediate_not_ca,
            evil_intermediate,
            client_ca,
            foreign_client_ca,
            broker_key: broker,
            renewed_broker_key: renewed,
            large_broker_key: large,
            ec_broker_key: ec,
            device_key: device,
        })
    }

    /// The lab clock these authorities were generated for.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The root every good profile chains to (what devices trust).
    pub fn root(&self) -> &Certificate {
        &self.root.cert
    }

    /// The name the device dials and good leaves carry.
    pub fn broker_name(&self) -> &str {
        &self.names.broker
    }
}
