//! The TLS wire as the front sees it before and around OpenSSL: records, the
//! ClientHello, alerts and cipher-suite names.

use crate::lab::policy::TlsVersion;
use crate::timeline::ClientHello;

/// Content types of TLS records.
pub(crate) mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
}

/// Largest plaintext a record may carry.
pub(crate) const MAX_PLAINTEXT: usize = 16_384;
/// Largest record on the wire (ciphertext expansion included).
pub(crate) const MAX_RECORD: usize = MAX_PLAINTEXT + 2_048;

/// One TLS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub content_type: u8,
    pub version: u16,
    pub payload: Vec<u8>,
}

impl Record {
    /// The record as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.payload.len());
        out.push(self.content_type);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The alert description, when this is an alert in plaintext (two bytes:
    /// level, description). An encrypted alert is longer and unreadable here.
    pub fn plaintext_alert(&self) -> Option<u8> {
        (self.content_type == content::ALERT && self.payload.len() == 2).then(|| self.payload[1])
    }
}

/// The bytes were not TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotTls;

/// Splits a byte stream into records as bytes arrive.
#[derive(Debug, Default)]
pub(crate) struct RecordScanner {
    buf: Vec<u8>,
}

impl RecordScanner {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete record, if one is buffered.
    pub fn next_record(&mut self) -> Result<Option<Record>, NotTls> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let content_type = self.buf[0];
        if !(20..=24).contains(&content_type) || self.buf[1] != 3 {
            return Err(NotTls);
        }
        let version = u16::from_be_bytes([self.buf[1], self.buf[2]]);
        let len = usize::from(u16::from_be_bytes([self.buf[3], self.buf[4]]));
        if len > MAX_RECORD {
            return Err(NotTls);
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some(Record {
            content_type,
            version,
            payload,
        }))
    }
}

/// Why a ClientHello could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HelloError {
    /// The first record is not a TLS handshake record.
    NotTls,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The message is cut short or its lengths do not add up.
    Malformed,
}

/// Reassembles the first handshake message from handshake records: returns its
/// bytes (type and length included) once complete.
pub(crate) fn first_handshake_message(records: &[Record]) -> Result<Option<Vec<u8>>, HelloError> {
    let mut message = Vec::new();
    for record in records {
        if record.content_type != content::HANDSHAKE {
            return Err(HelloError::NotTls);
        }
        message.extend_from_slice(&record.payload);
        if message.len() >= 4 {
            if message[0] != 1 {
                return Err(HelloError::NotClientHello);
            }
            let len = usize::from(message[1]) << 16
                | usize::from(message[2]) << 8
                | usize::from(message[3]);
            if message.len() >= 4 + len {
                message.truncate(4 + len);
                return Ok(Some(message));
            }
        }
    }
    Ok(None)
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        if self.data.len() < n {
            return Err(HelloError::Malformed);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, HelloError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, HelloError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// GREASE values (RFC 8701) carry no meaning and are left out of the record.
fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// Parses a ClientHello handshake message (type and length included).
pub(crate) fn parse_client_hello(message: &[u8]) -> Result<ClientHello, HelloError> {
    let mut r = Reader { data: message };
    if r.u8()? != 1 {
        return Err(HelloError::NotClientHello);
    }
    let len = r.take(3)?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    if r.data.len() != len {
        return Err(HelloError::Malformed);
    }
    let legacy_version = r.u16()?;
    r.take(32)?; // random
    r.vec8()?; // session id
    let suites = r.vec16()?;
    if suites.len() % 2 != 0 {
        return Err(HelloError::Malformed);
    }
    let cipher_suites = suites
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .filter(|s| !is_grease(*s))
        .map(cipher_suite_name)
        .collect();
    r.vec8()?; // compression methods
    let mut hello = ClientHello {
        cipher_suites,
        ..ClientHello::default()
    };
    let mut supported_versions = None;
    if !r.data.is_empty() {
        let mut exts = Reader { data: r.vec16()? };
        while !exts.data.is_empty() {
            let kind = exts.u16()?;
            let mut body = Reader {
                data: exts.vec16()?,
            };
            match kind {
                0 => hello.sni = parse_sni(&mut body)?,
                1 => {
                    hello.max_fragment_length = match body.u8()? {
                        1 => Some(512),
                        2 => Some(1024),
                        3 => Some(2048),
                        4 => Some(4096),
                        _ => return Err(HelloError::Malformed),
                    }
                }
                43 => {
                    let list = body.vec8()?;
                    supported_versions = Some(
                        list.chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .filter(|v| !is_grease(*v))
                            .collect::<Vec<_>>(),
                    );
                }
                _ => {}
            }
        }
    }
    hello.versions = match supported_versions {
        Some(list) => list.into_iter().map(version_name).collect(),
        // Without supported_versions the client accepts its legacy version and
        // (as far as the hello says) everything below it.
        None => TlsVersion::ALL
            .iter()
            .filter(|v| v.wire() <= legacy_version)
            .rev()
            .map(|v| v.as_str().to_owned())
            .collect(),
    };
    Ok(hello)
}

fn parse_sni(body: &mut Reader<'_>) -> Result<Option<String>, HelloError> {
    if body.data.is_empty() {
        // The empty form only appears in a ServerHello; tolerate it.
        return Ok(None);
    }
    let mut list = Reader {
        data: body.vec16()?,
    };
    while !list.data.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type == 0 {
            return Ok(Some(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Ok(None)
}

/// `TLS1.2` for 0x0303, `0xXXXX` for what is not a TLS version.
pub(crate) fn version_name(wire: u16) -> String {
    match TlsVersion::from_wire(wire) {
        Some(v) => v.as_str().to_owned(),
        None if wire == 0x0300 => "SSL3.0".to_owned(),
        None => format!("0x{wire:04X}"),
    }
}

/// The IANA name of a cipher suite, or `0xXXXX` for one not in the table.
pub(crate) fn cipher_suite_name(id: u16) -> String {
    let name = match id {
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000A => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002F => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003C => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003D => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006B => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x009C => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009D => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009E => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009F => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x00FF => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x5600 => "TLS_FALLBACK_SCSV",
        0xC003 => "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xC004 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        0xC005 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
        0xC008 => "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xC009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xC00A => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xC00D => "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA",
        0xC00E => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
        0xC00F => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
        0xC012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xC013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xC014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xC023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC025 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
        0xC026 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
        0xC027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xC028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xC029 => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256",
        0xC02A => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
        0xC02B => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02C => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02D => "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256",
        0xC02E => "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
        0xC02F => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xC030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xC031 => "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256",
        0xC032 => "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
        0xC09C => "TLS_RSA_WITH_AES_128_CCM",
        0xC09D => "TLS_RSA_WITH_AES_256_CCM",
        0xC0A0 => "TLS_RSA_WITH_AES_128_CCM_8",
        0xC0A1 => "TLS_RSA_WITH_AES_256_CCM_8",
        0xC0AC => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
        0xC0AD => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
        0xC0AE => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        0xC0AF => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
        0xCCA8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCA9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xCCAA => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return format!("0x{id:04X}"),
    };
    name.to_owned()
}

/// The name of an alert description (RFC 5246, RFC 8446).
pub(crate) fn alert_name(description: u8) -> String {
    let name = match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("alert_{description}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello built by hand, field by field, the way the RFC lays it out.
    fn hello(extensions: &[(u16, Vec<u8>)], suites: &[u16], legacy: u16) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            body.extend_from_slice(&s.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        for (kind, data) in extensions {
            exts.extend_from_slice(&kind.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        msg.extend_from_slice(&body);
        msg
    }

    fn sni(name: &str) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name.as_bytes());
        let mut out = (entry.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&entry);
        out
    }

    #[test]
    fn sni_mfln_suites_and_legacy_versions_are_read() {
        let msg = hello(
            &[(0, sni("broker.hil.test")), (1, vec![1])],
            &[0xC02F, 0x0A0A, 0x1234],
            0x0303,
        );
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(h.sni.as_deref(), Some("broker.hil.test"));
        assert_eq!(h.max_fragment_length, Some(512));
        assert_eq!(
            h.cipher_suites,
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0x1234"]
        );
        assert_eq!(h.versions, ["TLS1.2", "TLS1.1", "TLS1.0"]);
    }

    #[test]
    fn supported_versions_wins_over_the_legacy_field() {
        let msg = hello(&[(43, vec![4, 0x03, 0x04, 0x03, 0x03])], &[0x1301], 0x0303);
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(h.versions, ["TLS1.3", "TLS1.2"]);
        assert_eq!(h.sni, None);
        assert_eq!(h.max_fragment_length, None);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors_not_panics() {
        let msg = hello(&[(0, sni("x"))], &[0x002F], 0x0303);
        for cut in 0..msg.len() {
            assert!(parse_client_hello(&msg[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            parse_client_hello(&[2, 0, 0, 0]),
            Err(HelloError::NotClientHello)
        );
        let mut scanner = RecordScanner::default();
        scanner.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(scanner.next_record(), Err(NotTls));
    }

    #[test]
    fn a_hello_split_over_records_is_reassembled() {
        let msg = hello(&[(0, sni("broker.hil.test"))], &[0x002F], 0x0303);
        let (a, b) = msg.split_at(10);
        let records: Vec<Record> = [a, b]
            .iter()
            .map(|p| Record {
                content_type: content::HANDSHAKE,
                version: 0x0301,
                payload: p.to_vec(),
            })
            .collect();
        assert_eq!(first_handshake_message(&records[..1]), Ok(None));
        assert_eq!(first_handshake_message(&records), Ok(Some(msg)));
    }

    #[test]
    fn alerts_by_name() {
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(112), "unrecognized_name");
        assert_eq!(alert_name(250), "alert_250");
    }
}
