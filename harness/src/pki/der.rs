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

/// One DER element: its tag, and where its content lies in the whole buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tlv {
    /// The tag byte (single-byte tags only: all X.509 needs).
    pub tag: u8,
    /// The whole element, header included.
    pub whole: std::ops::Range<usize>,
    /// The content, after the header.
    pub content: std::ops::Range<usize>,
}

/// Reads the element starting at `pos`, checking it fits in `der[..end]`.
pub(crate) fn read(der: &[u8], pos: usize, end: usize) -> Result<Tlv, PkiError> {
    let tag = *der.get(pos).ok_or(PkiError::Der { offset: pos })?;
    if tag & 0x1f == 0x1f {
        return Err(PkiError::Der { offset: pos });
    }
    let (h, l) = header(der, pos)?;
    let content_end = pos
        .checked_add(h)
        .and_then(|s| s.checked_add(l))
        .filter(|&e| e <= end.min(der.len()))
        .ok_or(PkiError::Der { offset: pos })?;
    Ok(Tlv {
        tag,
        whole: pos..content_end,
        content: pos + h..content_end,
    })
}

/// The elements directly inside `range` (the content of a SEQUENCE or SET).
pub(crate) fn children(der: &[u8], range: std::ops::Range<usize>) -> Result<Vec<Tlv>, PkiError> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let tlv = read(der, pos, range.end)?;
        pos = tlv.whole.end;
        out.push(tlv);
    }
    Ok(out)
}

/// The parts of a TBSCertificate a catalogue root is checked by.
pub(crate) struct TbsFields {
    /// The issuer Name element (tag and length included).
    pub issuer: std::ops::Range<usize>,
    /// The subject Name element (tag and length included).
    pub subject: std::ops::Range<usize>,
    /// The extensions, as (OID content, critical, extnValue content).
    pub extensions: Vec<(Vec<u8>, bool, std::ops::Range<usize>)>,
}

pub(crate) fn tbs_fields(der: &[u8]) -> Result<TbsFields, PkiError> {
    let cert = read(der, 0, der.len())?;
    let tbs = read(der, cert.content.start, cert.content.end)?;
    let fields = children(der, tbs.content.clone())?;
    // version [0] is optional; then serial, signature, issuer, validity, subject.
    let skip = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
    let name_at = |index: usize| {
        fields
            .get(index)
            .filter(|f| f.tag == 0x30)
            .map(|f| f.whole.clone())
            .ok_or(PkiError::Der {
                offset: tbs.content.start,
            })
    };
    let issuer = name_at(skip + 2)?;
    let subject = name_at(skip + 4)?;
    let mut extensions = Vec::new();
    if let Some(wrapper) = fields.iter().find(|f| f.tag == 0xa3) {
        let list = read(der, wrapper.content.start, wrapper.content.end)?;
        for ext in children(der, list.content.clone())? {
            let parts = children(der, ext.content.clone())?;
            let bad = || PkiError::Der {
                offset: ext.whole.start,
            };
            let oid = parts.first().filter(|p| p.tag == 0x06).ok_or_else(bad)?;
            let (critical, value) = match parts.as_slice() {
                [_, flag, value] if flag.tag == 0x01 => {
                    (der.get(flag.content.start).is_some_and(|b| *b != 0), value)
                }
                [_, value] => (false, value),
                _ => return Err(bad()),
            };
            if value.tag != 0x04 {
                return Err(bad());
            }
            extensions.push((
                der[oid.content.clone()].to_vec(),
                critical,
                value.content.clone(),
            ));
        }
    }
    Ok(TbsFields {
        issuer,
        subject,
        extensions,
    })
}

/// What a basicConstraints extension says: (cA, pathLenConstraint).
pub(crate) fn basic_constraints(
    der: &[u8],
    value: std::ops::Range<usize>,
) -> Result<(bool, Option<u64>), PkiError> {
    let seq = read(der, value.start, value.end)?;
    let mut ca = false;
    let mut path_len = None;
    for part in children(der, seq.content)? {
        match part.tag {
            0x01 => ca = der.get(part.content.start).is_some_and(|b| *b != 0),
            0x02 => {
                let bytes = &der[part.content.clone()];
                if bytes.len() > 8 {
                    return Err(PkiError::Der {
                        offset: part.whole.start,
                    });
                }
                path_len = Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
            }
            _ => {}
        }
    }
    Ok((ca, path_len))
}

/// The arcs of an OBJECT IDENTIFIER's content.
pub(crate) fn oid_arcs(content: &[u8]) -> Option<Vec<u64>> {
    let (&first, rest) = content.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    let mut arcs = if first < 80 {
        vec![u64::from(first / 40), u64::from(first % 40)]
    } else {
        vec![2, u64::from(first - 80)]
    };
    let mut value: u64 = 0;
    let mut pending = false;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        pending = b & 0x80 != 0;
        if !pending {
            arcs.push(value);
            value = 0;
        }
    }
    (!pending).then_some(arcs)
}

/// The content of the basicConstraints extension's OID (2.5.29.19).
pub(crate) const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

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
    fn elements_that_overrun_their_parent_are_errors() {
        // A SEQUENCE claiming 5 bytes inside a parent of 3.
        let der = [0x30, 0x03, 0x30, 0x05, 0x00];
        assert!(children(&der, 2..5).is_err());
        assert!(
            read(&[0x1f, 0x00], 0, 2).is_err(),
            "multi-byte tags are refused"
        );
    }

    #[test]
    fn oid_arcs_decode_multi_byte_arcs() {
        // 2.5.4.3 (commonName) and 1.2.840.113549 (rsadsi)
        assert_eq!(oid_arcs(&[0x55, 0x04, 0x03]), Some(vec![2, 5, 4, 3]));
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            Some(vec![1, 2, 840, 113549])
        );
        assert_eq!(oid_arcs(&[0x2a, 0x86]), None, "a truncated arc");
    }

    #[test]
    fn replace_all_counts() {
        let mut v = vec![1, 2, 3, 1, 2, 3];
        assert_eq!(replace_all(&mut v, &[1, 2], &[9, 9]), 2);
        assert_eq!(v, vec![9, 9, 3, 9, 9, 3]);
    }
}
