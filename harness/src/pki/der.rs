//! Just enough DER to take a certificate apart and put it back together, for the
//! profiles rcgen cannot produce directly (a corrupted or an MD5 signature).

use super::PkiError;

/// The byte ranges of an X.509 certificate's three top-level parts.
pub(crate) struct CertificateParts {
    /// The whole TBSCertificate element, tag and length included (what is signed).
    pub tbs: std::ops::Range<usize>,
    /// The signature BIT STRING's content, after the unused-bits byte.
    pub signature: std::ops::Range<usize>,
}

/// Reads a tag and length at `pos`; returns (header length, content length).
fn header(der: &[u8], pos: usize) -> Result<(usize, usize), PkiError> {
    let bad = || PkiError::Der { offset: pos };
    let first = *der.get(pos + 1).ok_or_else(bad)?;
    if first < 0x80 {
        return Ok((2, first as usize));
    }
    let count = (first & 0x7f) as usize;
    if count == 0 || count > 4 {
        return Err(bad());
    }
    let bytes = der.get(pos + 2..pos + 2 + count).ok_or_else(bad)?;
    let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Ok((2 + count, len))
}

pub(crate) fn split(der: &[u8]) -> Result<CertificateParts, PkiError> {
    let (outer_hdr, _) = header(der, 0)?;
    let tbs_start = outer_hdr;
    let (h, l) = header(der, tbs_start)?;
    let alg_start = tbs_start + h + l;
    let (h2, l2) = header(der, alg_start)?;
    let sig_start = alg_start + h2 + l2;
    let (h3, l3) = header(der, sig_start)?;
    if der.get(sig_start) != Some(&0x03) || sig_start + h3 + l3 != der.len() {
        return Err(PkiError::Der { offset: sig_start });
    }
    Ok(CertificateParts {
        tbs: tbs_start..alg_start,
        // Skip the unused-bits byte of the BIT STRING.
        signature: sig_start + h3 + 1..sig_start + h3 + l3,
    })
}

/// Replaces every occurrence of `from` by `to` (same length) and returns how many.
pub(crate) fn replace_all(der: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    debug_assert_eq!(from.len(), to.len());
    let mut count = 0;
    let mut i = 0;
    while i + from.len() <= der.len() {
        if &der[i..i + from.len()] == from {
            der[i..i + from.len()].copy_from_slice(to);
            count += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    count
}

/// AlgorithmIdentifier OIDs as they appear in DER (tag, length, value).
pub(crate) const OID_SHA256_WITH_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];
pub(crate) const OID_MD5_WITH_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_lengths_are_read() {
        assert_eq!(header(&[0x30, 0x82, 0x01, 0x00], 0).ok(), Some((4, 256)));
        assert_eq!(header(&[0x30, 0x05], 0).ok(), Some((2, 5)));
        assert!(header(&[0x30], 0).is_err());
        assert!(header(&[0x30, 0x80], 0).is_err());
    }

    #[test]
    fn truncated_certificates_are_errors_not_panics() {
        assert!(split(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_err());
        assert!(split(&[]).is_err());
    }

    #[test]
    fn replace_all_counts() {
        let mut v = vec![1, 2, 3, 1, 2, 3];
        assert_eq!(replace_all(&mut v, &[1, 2], &[9, 9]), 2);
        assert_eq!(v, vec![9, 9, 3, 9, 9, 3]);
    }
}
