//! The second TLS stack: rustls, for brokers that ignore max_fragment_length.
//!
//! OpenSSL always honours the extension, and BearSSL streams plaintext handshake
//! records of any size, so the only faithful "ignoring" broker is one that never
//! acknowledges the extension and then sends full-size *encrypted* records: rustls
//! does exactly that. A device that shrank its receive buffer then fails with
//! BearSSL error 6 on the first large record, as it would in the field.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::lab::policy::{ClientCertPolicy, TlsPolicy, TlsVersion};
use crate::pki::Profile;

/// Why the rustls stack cannot serve a policy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IgnoringError {
    /// rustls speaks TLS 1.2 and 1.3 only.
    #[error("a broker that ignores max_fragment_length (rustls) speaks TLS 1.2 and 1.3 only")]
    Versions,
    /// A key or certificate rustls refused (its words in the message, once).
    #[error("rustls refused the configuration: {0}")]
    Rustls(rustls::Error),
    /// The client CA could not be used.
    #[error("rustls refused the client CA: {0}")]
    ClientCa(String),
    /// The key is not PKCS#8 PEM.
    #[error("the broker key is not PKCS#8 PEM")]
    Key,
}

impl From<rustls::Error> for IgnoringError {
    fn from(e: rustls::Error) -> Self {
        IgnoringError::Rustls(e)
    }
}

pub(crate) fn server_config(
    profile: &Profile,
    policy: &TlsPolicy,
) -> Result<Arc<ServerConfig>, IgnoringError> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = policy
        .versions
        .iter()
        .filter_map(|v| match v {
            TlsVersion::Tls12 => Some(&rustls::version::TLS12),
            TlsVersion::Tls13 => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    if versions.is_empty() {
        return Err(IgnoringError::Versions);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let client_ca = match policy.client_cert {
        ClientCertPolicy::NotRequested => None,
        ClientCertPolicy::Required => Some(&profile.client_auth().ca),
        ClientCertPolicy::RequiredFromForeignCa => Some(&profile.client_auth().foreign_ca),
    };
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from(ca.der().to_vec()))
                .map_err(|e| IgnoringError::ClientCa(e.to_string()))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| IgnoringError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = profile
        .broker_chain()
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = pem::parse(profile.broker_key().expose()).map_err(|_| IgnoringError::Key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.into_contents()));
    let mut config = builder.with_single_cert(chain, key)?;
    // Full handshakes only, as on the OpenSSL stack.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The negotiated version, as the timeline spells it.
pub(crate) fn version_name(version: Option<rustls::ProtocolVersion>) -> String {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS1.2".into(),
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS1.3".into(),
        _ => "unknown".into(),
    }
}
