//! Key generation. RSA keys come from OpenSSL (ring cannot generate RSA keys) and
//! are handed to rcgen as PKCS#8; P-256 keys come from rcgen itself.

use std::fmt;

use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use super::PkiError;

/// The kinds of key the catalogue uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// What real brokers use; the default.
    Rsa2048,
    /// The large-chain profile.
    Rsa4096,
    /// The ecdsa profile.
    EcdsaP256,
}

/// A private key, usable both by rcgen (to sign certificates) and by OpenSSL (to
/// sign what rcgen cannot, such as an MD5 signature).
pub(crate) struct Key {
    pub(crate) pair: KeyPair,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

impl Key {
    pub(crate) fn generate(kind: KeyKind) -> Result<Key, PkiError> {
        let pair = match kind {
            KeyKind::Rsa2048 => rsa(2048)?,
            KeyKind::Rsa4096 => rsa(4096)?,
            KeyKind::EcdsaP256 => {
                KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
                    PkiError::KeyGeneration {
                        kind: "P-256",
                        source: source.into(),
                    }
                })?
            }
        };
        Ok(Key { pair })
    }

    /// The key as PKCS#8 PEM (secret: write it only 0600).
    pub(crate) fn pkcs8_pem(&self) -> String {
        self.pair.serialize_pem()
    }

    pub(crate) fn openssl(&self) -> Result<PKey<Private>, PkiError> {
        PKey::private_key_from_pkcs8(self.pair.serialized_der()).map_err(|source| {
            PkiError::KeyGeneration {
                kind: "PKCS#8 import",
                source: source.into(),
            }
        })
    }
}

fn rsa(bits: u32) -> Result<KeyPair, PkiError> {
    let kind = if bits == 2048 { "RSA-2048" } else { "RSA-4096" };
    let wrap =
        |source: Box<dyn std::error::Error + Send + Sync>| PkiError::KeyGeneration { kind, source };
    let rsa = Rsa::generate(bits).map_err(|e| wrap(e.into()))?;
    let pkey = PKey::from_rsa(rsa).map_err(|e| wrap(e.into()))?;
    let der = pkey.private_key_to_pkcs8().map_err(|e| wrap(e.into()))?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(|e| wrap(e.into()))
}

/// Generates several keys at once, one thread each: RSA generation dominates the
/// cold catalogue and parallelises perfectly.
pub(crate) fn generate_all<const N: usize>(kinds: [KeyKind; N]) -> Result<[Key; N], PkiError> {
    let results: Vec<Result<Key, PkiError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = kinds
            .iter()
            .map(|&kind| scope.spawn(move || Key::generate(kind)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(PkiError::KeyGenerationPanicked)))
            .collect()
    });
    let keys: Vec<Key> = results.into_iter().collect::<Result<_, _>>()?;
    keys.try_into().map_err(|_| PkiError::KeyGenerationPanicked)
}

/// The smallest RSA key a catalogue root may have.
pub(crate) const MIN_RSA_BITS: u32 = 2048;

impl Key {
    /// Imports a private key a team brought (PKCS#8, PKCS#1 or SEC1 PEM) for
    /// signing certificates: RSA of at least 2048 bits, or ECDSA on P-256 or
    /// P-384 (what both rcgen and the device's BearSSL handle).
    pub(crate) fn import_pem(pem: &[u8], origin: &std::path::Path) -> Result<Key, PkiError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("ENCRYPTED") {
            return Err(PkiError::EncryptedKey {
                path: origin.to_owned(),
            });
        }
        let pkey = PKey::private_key_from_pem(pem).map_err(|_| PkiError::KeyParse {
            path: origin.to_owned(),
        })?;
        let unsupported = |kind: String| PkiError::UnsupportedKey {
            path: origin.to_owned(),
            kind,
        };
        let algorithm = match pkey.id() {
            openssl::pkey::Id::RSA => {
                let bits = pkey.bits();
                if bits < MIN_RSA_BITS {
                    return Err(PkiError::WeakKey {
                        path: origin.to_owned(),
                        bits,
                    });
                }
                &rcgen::PKCS_RSA_SHA256
            }
            openssl::pkey::Id::EC => {
                let curve = pkey.ec_key().ok().and_then(|ec| ec.group().curve_name());
                match curve {
                    Some(openssl::nid::Nid::X9_62_PRIME256V1) => &PKCS_ECDSA_P256_SHA256,
                    Some(openssl::nid::Nid::SECP384R1) => &rcgen::PKCS_ECDSA_P384_SHA384,
                    Some(other) => {
                        return Err(unsupported(format!(
                            "an EC key on {}",
                            other.short_name().unwrap_or("an unnamed curve")
                        )))
                    }
                    None => return Err(unsupported("an EC key on an unnamed curve".into())),
                }
            }
            other => return Err(unsupported(format!("a key of type {other:?}"))),
        };
        let der = pkey
            .private_key_to_pkcs8()
            .map_err(|_| PkiError::KeyParse {
                path: origin.to_owned(),
            })?;
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der);
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der, algorithm)
            .map_err(|e| unsupported(format!("a key the signer refuses ({e})")))?;
        Ok(Key { pair })
    }
}
