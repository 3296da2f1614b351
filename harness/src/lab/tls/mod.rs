//! The TLS front: OpenSSL terminates the device's TLS with the scenario's chain and
//! policy, while the front watches the raw bytes both ways (ClientHello, alerts,
//! who stopped sending) so a failed handshake still has an outcome.

pub(crate) mod front;
pub(crate) mod hello;
pub(crate) mod ignoring;
pub(crate) mod live;

use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::ssl::{
    NameType, SniError, SslAlert, SslContext, SslContextBuilder, SslMethod, SslOptions,
    SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

use super::policy::{ClientCertPolicy, TlsPolicy, TlsVersion};
use crate::pki::Profile;

fn ssl_version(v: TlsVersion) -> SslVersion {
    match v {
        TlsVersion::Tls10 => SslVersion::TLS1,
        TlsVersion::Tls11 => SslVersion::TLS1_1,
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }
}

fn no_version_option(v: TlsVersion) -> SslOptions {
    match v {
        TlsVersion::Tls10 => SslOptions::NO_TLSV1,
        TlsVersion::Tls11 => SslOptions::NO_TLSV1_1,
        TlsVersion::Tls12 => SslOptions::NO_TLSV1_2,
        TlsVersion::Tls13 => SslOptions::NO_TLSV1_3,
    }
}

/// An OpenSSL server context for one profile and policy.
pub(crate) fn server_context(
    profile: &Profile,
    policy: &TlsPolicy,
) -> Result<SslContext, ErrorStack> {
    let mut b = SslContextBuilder::new(SslMethod::tls_server())?;
    // Level 0: the lab must be able to serve what the catalogue deliberately
    // breaks (an MD5-signed leaf, which OpenSSL 3 refuses to even load above it)
    // and to speak TLS 1.0/1.1 with their SHA-1 suites. Judging is the device's job.
    b.set_security_level(0);
    let key = PKey::private_key_from_pem(profile.broker_key().expose().as_bytes())?;
    let chain = profile
        .broker_chain()
        .iter()
        .map(|c| X509::from_der(c.der()))
        .collect::<Result<Vec<_>, _>>()?;
    // OpenSSL always sends the certificate matching the key first. The catalogue
    // gives reversed-chain the intermediate's key, so the intermediate goes first.
    let leaf_at = chain
        .iter()
        .position(|c| c.public_key().is_ok_and(|k| k.public_eq(&key)))
        .unwrap_or(0);
    for (i, cert) in chain.into_iter().enumerate() {
        if i == leaf_at {
            b.set_certificate(&cert)?;
        } else {
            b.add_extra_chain_cert(cert)?;
        }
    }
    b.set_private_key(&key)?;
    b.check_private_key()?;

    let allowed: Vec<TlsVersion> = policy.versions.iter().collect();
    let oldest = allowed.first().copied().unwrap_or(TlsVersion::Tls12);
    let newest = allowed.last().copied().unwrap_or(TlsVersion::Tls13);
    b.set_min_proto_version(Some(ssl_version(oldest)))?;
    b.set_max_proto_version(Some(ssl_version(newest)))?;
    for v in TlsVersion::ALL {
        if v > oldest && v < newest && !policy.versions.contains(v) {
            b.set_options(no_version_option(v));
        }
    }
    if oldest < TlsVersion::Tls12 {
        b.set_cipher_list("DEFAULT:@SECLEVEL=0")?;
    }
    // Every connection does a full handshake: a resumed session would hide the
    // certificate from the device and make verdicts depend on connection order.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_options(SslOptions::NO_TICKET);

    let client_ca = match policy.client_cert {
        ClientCertPolicy::NotRequested => None,
        ClientCertPolicy::Required => Some(&profile.client_auth().ca),
        ClientCertPolicy::RequiredFromForeignCa => Some(&profile.client_auth().foreign_ca),
    };
    if let Some(ca) = client_ca {
        let ca = X509::from_der(ca.der())?;
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(ca.clone())?;
        b.set_verify_cert_store(store.build())?;
        b.add_client_ca(&ca)?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    if policy.sni_required {
        b.set_servername_callback(|ssl, alert| {
            if ssl.servername(NameType::HOST_NAME).is_some() {
                Ok(())
            } else {
                *alert = SslAlert::UNRECOGNIZED_NAME;
                Err(SniError::ALERT_FATAL)
            }
        });
    }
    Ok(b.build())
}

/// The protocol version OpenSSL negotiated, as the timeline spells it.
pub(crate) fn negotiated_version(version: Option<SslVersion>) -> String {
    match version {
        Some(v) if v == SslVersion::TLS1 => "TLS1.0".into(),
        Some(v) if v == SslVersion::TLS1_1 => "TLS1.1".into(),
        Some(v) if v == SslVersion::TLS1_2 => "TLS1.2".into(),
        Some(v) if v == SslVersion::TLS1_3 => "TLS1.3".into(),
        _ => "unknown".into(),
    }
}
