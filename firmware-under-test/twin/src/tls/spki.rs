//! Reading a SubjectPublicKeyInfo into what `setKnownKey` holds: an RSA modulus and
//! exponent, or an EC curve and point.

/// A server public key pinned with `setKnownKey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownKey {
    /// RSA modulus and public exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC curve (TLS named-curve number, 23 for P-256) and uncompressed point.
    Ec {
        /// Curve id.
        curve: u16,
        /// The point.
        point: Vec<u8>,
    },
}

/// A public key the twin cannot read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SpkiError {
    /// Not the DER structure expected at this byte.
    #[error("malformed SubjectPublicKeyInfo at byte {0}")]
    Malformed(usize),
    /// An algorithm or curve BearSSL's known-key mode does not take.
    #[error("unsupported public key algorithm or curve")]
    Unsupported,
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// One DER element: its tag, content and the offset just past it.
fn element(der: &[u8], at: usize) -> Result<(u8, &[u8], usize), SpkiError> {
    let bad = SpkiError::Malformed(at);
    let tag = *der.get(at).ok_or(bad.clone())?;
    let first = *der.get(at + 1).ok_or(bad.clone())?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 3 {
            return Err(bad);
        }
        let bytes = der.get(at + 2..at + 2 + count).ok_or(bad.clone())?;
        (
            bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize),
            2 + count,
        )
    };
    let content = der.get(at + header..at + header + len).ok_or(bad)?;
    Ok((tag, content, at + header + len))
}

fn strip_leading_zeros(int: &[u8]) -> Vec<u8> {
    let start = int
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(int.len().saturating_sub(1));
    int[start..].to_vec()
}

impl KnownKey {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<KnownKey, SpkiError> {
        let (tag, spki, _) = element(der, 0)?;
        if tag != 0x30 {
            return Err(SpkiError::Malformed(0));
        }
        let (tag, alg, after_alg) = element(spki, 0)?;
        if tag != 0x30 {
            return Err(SpkiError::Malformed(0));
        }
        let (_, oid, after_oid) = element(alg, 0)?;
        let (tag, bits, _) = element(spki, after_alg)?;
        if tag != 0x03 || bits.first() != Some(&0) {
            return Err(SpkiError::Malformed(after_alg));
        }
        let key = &bits[1..];
        if oid == OID_RSA {
            let (_, seq, _) = element(key, 0)?;
            let (_, n, after_n) = element(seq, 0)?;
            let (_, e, _) = element(seq, after_n)?;
            Ok(KnownKey::Rsa {
                n: strip_leading_zeros(n),
                e: strip_leading_zeros(e),
            })
        } else if oid == OID_EC {
            let (_, curve_oid, _) = element(alg, after_oid)?;
            let curve = match curve_oid {
                c if c == OID_P256 => 23,
                c if c == OID_P384 => 24,
                _ => return Err(SpkiError::Unsupported),
            };
            Ok(KnownKey::Ec {
                curve,
                point: key.to_vec(),
            })
        } else {
            Err(SpkiError::Unsupported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x82, 0xff],
            &[0x04, 0x00],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert!(KnownKey::from_spki_der(bad).is_err(), "{bad:?}");
        }
    }
}
