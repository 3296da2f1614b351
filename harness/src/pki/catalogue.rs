//! Building every profile of the catalogue from the run's authorities.

use std::sync::Arc;

use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use rcgen::{
    CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::authority::{name, random_serial, Authorities, Authority};
use super::cert::{Certificate, PrivateKeyPem};
use super::der;
use super::keys::Key;
use super::names::BrokerName;
use super::root::RootCa;
use super::{PkiError, ProfileId};

/// The client identity the device presents when a broker requires one, and the CAs
/// a broker may be told to trust for it.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The CA the lab's broker trusts for client certificates.
    pub ca: Certificate,
    /// A CA that did not issue the device's certificate (client-cert-wrong-ca).
    pub foreign_ca: Certificate,
    /// The device's certificate, issued by `ca`.
    pub device_cert: Certificate,
    /// The device's private key.
    pub device_key: PrivateKeyPem,
}

/// One generated profile: what the broker serves and what the device trusts.
#[derive(Debug, Clone)]
pub struct Profile {
    id: ProfileId,
    at: OffsetDateTime,
    host: String,
    broker_chain: Vec<Certificate>,
    broker_key: PrivateKeyPem,
    device_anchors: Vec<Certificate>,
    client: ClientAuth,
}

impl Profile {
    /// Which profile this is.
    pub fn id(&self) -> ProfileId {
        self.id
    }

    /// The lab clock the profile was generated against.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// The host name the device is told to connect to (and the lab's DNS answers).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The chain exactly as the broker serves it, in order (normally leaf first).
    pub fn broker_chain(&self) -> &[Certificate] {
        &self.broker_chain
    }

    /// The key matching the first certificate of the chain (for `reversed-chain`,
    /// the intermediate's: a server always sends its own certificate first).
    pub fn broker_key(&self) -> &PrivateKeyPem {
        &self.broker_key
    }

    /// The trust anchors the reference firmware is provisioned with.
    pub fn device_anchors(&self) -> &[Certificate] {
        &self.device_anchors
    }

    /// The client certificate material for brokers that require one.
    pub fn client_auth(&self) -> &ClientAuth {
        &self.client
    }
}

/// Choices about the catalogue beyond the lab clock: whose root every good chain
/// ends in, and which name the device dials.
///
/// The default is the lab's own: a fresh "HIL Root" and `broker.hil.test`.
///
/// ```
/// use hil::pki::{Catalogue, CatalogueOptions, ProfileId};
/// use time::macros::datetime;
///
/// let options = CatalogueOptions::default().with_broker_name("mqtt.example.com".parse()?);
/// let catalogue = Catalogue::generate_with(datetime!(2026-06-01 12:00 UTC), &options)?;
/// // Every profile is presented for the name the firmware dials...
/// assert_eq!(catalogue.profile(ProfileId::WildcardMismatch)?.host(), "mqtt.example.com");
/// // ...and wrong-san is still wrong for it.
/// assert_eq!(catalogue.profile(ProfileId::WrongSan)?.host(), "mqtt.example.com");
/// # Ok::<(), hil::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CatalogueOptions {
    /// The root every good profile chains to; `None`: a fresh "HIL Root".
    pub root: Option<Arc<RootCa>>,
    /// The name the device dials; `None`: `broker.hil.test`.
    pub broker_name: Option<BrokerName>,
}

impl CatalogueOptions {
    /// Roots the catalogue in `root` (a team's test CA, or a kept lab root).
    pub fn with_root(mut self, root: Arc<RootCa>) -> Self {
        self.root = Some(root);
        self
    }

    /// Issues every profile for `name`.
    pub fn with_broker_name(mut self, name: BrokerName) -> Self {
        self.broker_name = Some(name);
        self
    }
}

/// The whole catalogue for one run: the authorities, generated once, and every
/// profile built from them.
///
/// ```
/// use hil::pki::{Catalogue, ProfileId};
/// use time::macros::datetime;
///
/// let at = datetime!(2030-06-01 12:00 UTC);
/// let catalogue = Catalogue::generate(at)?;
/// let expired = catalogue.profile(ProfileId::Expired)?;
/// let leaf = expired.broker_chain()[0].info()?;
/// assert_eq!(leaf.not_after, at - time::Duration::days(1));
/// # Ok::<(), hil::Error>(())
/// ```
#[derive(Debug)]
pub struct Catalogue {
    authorities: Arc<Authorities>,
    profiles: Vec<Profile>,
}

impl Catalogue {
    /// Generates the authorities and every profile for the lab clock `at`.
    pub fn generate(at: OffsetDateTime) -> Result<Catalogue, PkiError> {
        Catalogue::from_authorities(Arc::new(Authorities::generate(at)?))
    }

    /// Generates the catalogue for `at` with a chosen root and broker name.
    pub fn generate_with(
        at: OffsetDateTime,
        options: &CatalogueOptions,
    ) -> Result<Catalogue, PkiError> {
        Catalogue::from_authorities(Arc::new(Authorities::generate_with(at, options)?))
    }

    /// Builds every profile from authorities generated earlier (the warm path).
    pub fn from_authorities(authorities: Arc<Authorities>) -> Result<Catalogue, PkiError> {
        let profiles = ProfileId::ALL
            .iter()
            .map(|&id| build(&authorities, id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Catalogue {
            authorities,
            profiles,
        })
    }

    /// The lab clock.
    pub fn at(&self) -> OffsetDateTime {
        self.authorities.at
    }

    /// The authorities every profile was built from.
    pub fn authorities(&self) -> &Arc<Authorities> {
        &self.authorities
    }

    /// One profile.
    pub fn profile(&self, id: ProfileId) -> Result<&Profile, PkiError> {
        self.profiles
            .iter()
            .find(|p| p.id == id)
            .ok_or(PkiError::NotGenerated { id })
    }

    /// Every profile, in catalogue order.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }
}

/// How a leaf differs from the `valid` one.
struct Leaf<'a> {
    key: &'a Key,
    issuer: Option<&'a Authority>,
    cn: Option<&'a str>,
    sans: Vec<String>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    eku: Vec<ExtendedKeyUsagePurpose>,
    critical_extension: bool,
}

impl<'a> Leaf<'a> {
    fn normal(a: &'a Authorities) -> Leaf<'a> {
        Leaf {
            key: &a.broker_key,
            issuer: Some(&a.intermediate_a),
            cn: Some(&a.names.broker),
            sans: vec![a.names.broker.clone()],
            not_before: a.at - Duration::days(30),
            not_after: a.at + Duration::days(365),
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            critical_extension: false,
        }
    }

    fn sign(self) -> Result<Certificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = match self.cn {
            Some(cn) => name(cn),
            None => rcgen::DistinguishedName::new(),
        };
        params.subject_alt_names = self
            .sans
            .iter()
            .map(|s| s.clone().try_into().map(SanType::DnsName))
            .collect::<Result<_, _>>()
            .map_err(PkiError::sign("subject alternative name"))?;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = self.eku;
        params.use_authority_key_identifier_extension = self.issuer.is_some();
        if self.critical_extension {
            // A private-arc OID no implementation knows, marked critical, holding NULL.
            let mut ext = CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55555, 1, 1],
                vec![0x05, 0x00],
            );
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        let cert = match self.issuer {
            Some(issuer) => params.signed_by(&self.key.pair, &issuer.issuer()),
            None => params.self_signed(&self.key.pair),
        }
        .map_err(PkiError::sign("leaf"))?;
        Ok(Certificate::from_der(cert.der().to_vec()))
    }
}

fn build(a: &Authorities, id: ProfileId) -> Result<Profile, PkiError> {
    use ProfileId::*;
    let day = Duration::days(1);
    let int_a = &a.intermediate_a.cert;
    let names = &a.names;
    let mut host = names.broker.clone();
    let mut key = &a.broker_key;

    let chain = match id {
        Valid => vec![Leaf::normal(a).sign()?, int_a.clone()],
        RenewedLeaf => {
            key = &a.renewed_broker_key;
            vec![
                Leaf {
                    key,
                    ..Leaf::normal(a)
                }
                .sign()?,
                int_a.clone(),
            ]
        }
        NewIntermediate => vec![
            Leaf {
                issuer: Some(&a.intermediate_b),
                ..Leaf::normal(a)
            }
            .sign()?,
            a.intermediate_b.cert.clone(),
        ],
        FullChain => vec![Leaf::normal(a).sign()?, int_a.clone(), a.root.cert.clone()],
        Ecdsa => {
            key = &a.ec_broker_key;
            vec![
                Leaf {
                    key,
                    issuer: Some(&a.intermediate_ec),
                    ..Leaf::normal(a)
                }
                .sign()?,
                a.intermediate_ec.cert.clone(),
            ]
        }
        LargeChain => {
            key = &a.large_broker_key;
            let mut sans = vec![names.broker.clone()];
            sans.extend((1..=60).map(|n| format!("node-{n:02}.{}", names.broker)));
            vec![
                Leaf {
                    key,
                    issuer: Some(&a.intermediate_large),
                    sans,
                    ..Leaf::normal(a)
                }
                .sign()?,
                a.intermediate_large.cert.clone(),
            ]
        }
        WrongSan => vec![
            Leaf {
                sans: vec![names.wrong_san.clone()],
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
        WildcardMismatch => {
            host = names.wildcard_host.clone();
            vec![
                Leaf {
                    cn: Some(&names.wildcard_san),
                    sans: vec![names.wildcard_san.clone()],
                    ..Leaf::normal(a)
                }
                .sign()?,
                int_a.clone(),
            ]
        }
        Expired => vec![
            Leaf {
                not_before: a.at - Duration::days(366),
                not_after: a.at - day,
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
        NotYetValid => vec![
            Leaf {
                not_before: a.at + day,
                not_after: a.at + Duration::days(366),
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
        ExpiredIntermediate => vec![
            Leaf::normal(a).sign()?,
            a.intermediate_a_expired.cert.clone(),
        ],
        UntrustedRoot => vec![
            Leaf {
                issuer: Some(&a.evil_intermediate),
                ..Leaf::normal(a)
            }
            .sign()?,
            a.evil_intermediate.cert.clone(),
        ],
        SelfSigned => vec![Leaf {
            issuer: None,
            ..Leaf::normal(a)
        }
        .sign()?],
        MissingIntermediate => vec![Leaf::normal(a).sign()?],
        ReversedChain => {
            // A TLS server always sends the certificate matching its key first, so
            // the broker holds the intermediate's key here: the device then sees
            // the intermediate first, as from a misordered chain.
            key = &a.intermediate_a.key;
            vec![int_a.clone(), Leaf::normal(a).sign()?]
        }
        IntermediateNotCa => vec![
            Leaf {
                issuer: Some(&a.intermediate_not_ca),
                ..Leaf::normal(a)
            }
            .sign()?,
            a.intermediate_not_ca.cert.clone(),
        ],
        CriticalExtension => vec![
            Leaf {
                critical_extension: true,
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
        BadSignature => vec![corrupt_signature(Leaf::normal(a).sign()?)?, int_a.clone()],
        Md5Signature => vec![
            resign_md5(Leaf::normal(a).sign()?, &a.intermediate_a)?,
            int_a.clone(),
        ],
        CnOnly => vec![
            Leaf {
                sans: Vec::new(),
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
        ClientauthEku => vec![
            Leaf {
                eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
                ..Leaf::normal(a)
            }
            .sign()?,
            int_a.clone(),
        ],
    };

    Ok(Profile {
        id,
        at: a.at,
        host,
        broker_chain: chain,
        broker_key: PrivateKeyPem::new(key.pkcs8_pem()),
        device_anchors: vec![a.root.cert.clone()],
        client: client_auth(a)?,
    })
}

fn client_auth(a: &Authorities) -> Result<ClientAuth, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("hil-device");
    params.not_before = a.at - Duration::days(30);
    params.not_after = a.at + Duration::days(365);
    params.serial_number = Some(random_serial()?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&a.device_key.pair, &a.client_ca.issuer())
        .map_err(PkiError::sign("device client certificate"))?;
    Ok(ClientAuth {
        ca: a.client_ca.cert.clone(),
        foreign_ca: a.foreign_client_ca.cert.clone(),
        device_cert: Certificate::from_der(cert.der().to_vec()),
        device_key: PrivateKeyPem::new(a.device_key.pkcs8_pem()),
    })
}

/// Flips one byte in the middle of the signature: still well-formed DER, but the
/// signature no longer verifies.
fn corrupt_signature(cert: Certificate) -> Result<Certificate, PkiError> {
    let mut der = cert.der().to_vec();
    let parts = der::split(&der)?;
    let middle = parts.signature.start + parts.signature.len() / 2;
    der[middle] ^= 0x5a;
    Ok(Certificate::from_der(der))
}

/// Rewrites a sha256WithRSA certificate as md5WithRSA (same OID length) and signs it
/// again with MD5, which rcgen refuses to do.
fn resign_md5(cert: Certificate, issuer: &Authority) -> Result<Certificate, PkiError> {
    let mut der = cert.der().to_vec();
    let replaced = der::replace_all(&mut der, der::OID_SHA256_WITH_RSA, der::OID_MD5_WITH_RSA);
    if replaced != 2 {
        return Err(PkiError::Der { offset: 0 });
    }
    let parts = der::split(&der)?;
    let key = issuer.key.openssl()?;
    let openssl_err = |source| PkiError::Inspect { source };
    let mut signer = Signer::new(MessageDigest::md5(), &key).map_err(openssl_err)?;
    let signature = signer
        .sign_oneshot_to_vec(&der[parts.tbs.clone()])
        .map_err(openssl_err)?;
    if signature.len() != parts.signature.len() {
        return Err(PkiError::Der {
            offset: parts.signature.start,
        });
    }
    der[parts.signature].copy_from_slice(&signature);
    Ok(Certificate::from_der(der))
}
