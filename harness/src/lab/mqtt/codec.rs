//! A small MQTT 3.1.1 decoder: enough of each packet to record it, and the exact
//! bytes to forward it unchanged.

/// The packets the lab records; every other type is forwarded as `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    Connect {
        client_id: String,
        username: Option<String>,
        /// Kept only to check credentials; never recorded.
        password: Option<Vec<u8>>,
        keep_alive: u16,
        protocol_level: u8,
    },
    Connack {
        code: u8,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    },
    Subscribe {
        topics: Vec<String>,
    },
    Suback {
        /// One return code per requested filter: the granted QoS, or 0x80.
        codes: Vec<u8>,
    },
    Pingreq,
    Disconnect,
    Other,
}

/// The bytes are not MQTT 3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Largest packet the lab passes on (the device's buffers are far smaller).
const MAX_PACKET: usize = 1 << 20;

/// Splits a byte stream into MQTT packets.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet and its raw bytes.
    pub fn next_packet(&mut self) -> Result<Option<(Packet, Vec<u8>)>, Malformed> {
        let Some((body_len, header_len)) = remaining_length(&self.buf)? else {
            return Ok(None);
        };
        let total = header_len + body_len;
        if total > MAX_PACKET {
            return Err(Malformed);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let raw: Vec<u8> = self.buf.drain(..total).collect();
        let packet = parse(raw[0], &raw[header_len..])?;
        Ok(Some((packet, raw)))
    }
}

/// The packet identifier of a whole PUBLISH (QoS 1 or 2) or PUBREL packet, read
/// from its raw bytes.
pub(crate) fn packet_id(raw: &[u8]) -> Option<u16> {
    let (_, header_len) = remaining_length(raw).ok().flatten()?;
    let body = raw.get(header_len..)?;
    let id_at = match raw.first()? >> 4 {
        3 if (raw[0] >> 1) & 0x03 > 0 => {
            let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
            2 + topic_len
        }
        6 => 0,
        _ => return None,
    };
    Some(u16::from_be_bytes([
        *body.get(id_at)?,
        *body.get(id_at + 1)?,
    ]))
}

/// The answer that settles a PUBLISH of `qos` with `id` on the receiver's side:
/// PUBACK for QoS 1, PUBREC for QoS 2 (its PUBREL is answered with PUBCOMP).
pub(crate) fn publish_ack(qos: u8, id: u16) -> Option<[u8; 4]> {
    let [hi, lo] = id.to_be_bytes();
    match qos {
        1 => Some([0x40, 0x02, hi, lo]),
        2 => Some([0x50, 0x02, hi, lo]),
        _ => None,
    }
}

/// PUBCOMP for `id`.
pub(crate) fn pubcomp(id: u16) -> [u8; 4] {
    let [hi, lo] = id.to_be_bytes();
    [0x70, 0x02, hi, lo]
}

/// (remaining length, fixed header length) once the fixed header is complete.
fn remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, Malformed> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, 2 + i)));
        }
    }
    Err(Malformed)
}

struct Body<'a> {
    data: &'a [u8],
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.data.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    fn string(&mut self) -> Result<String, Malformed> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

fn parse(first: u8, body: &[u8]) -> Result<Packet, Malformed> {
    let mut b = Body { data: body };
    let flags = first & 0x0f;
    Ok(match first >> 4 {
        1 => {
            let _name = b.bytes()?;
            let protocol_level = b.u8()?;
            let connect_flags = b.u8()?;
            let keep_alive = b.u16()?;
            let client_id = b.string()?;
            if connect_flags & 0x04 != 0 {
                b.bytes()?; // will topic
                b.bytes()?; // will message
            }
            let username = if connect_flags & 0x80 != 0 {
                Some(b.string()?)
            } else {
                None
            };
            let password = if connect_flags & 0x40 != 0 {
                Some(b.bytes()?.to_vec())
            } else {
                None
            };
            Packet::Connect {
                client_id,
                username,
                password,
                keep_alive,
                protocol_level,
            }
        }
        2 => {
            b.u8()?; // session present
            Packet::Connack { code: b.u8()? }
        }
        3 => {
            let qos = (flags >> 1) & 0x03;
            let topic = b.string()?;
            if qos > 0 {
                b.u16()?; // packet id
            }
            Packet::Publish {
                topic,
                payload: b.data.to_vec(),
                qos,
                retain: flags & 0x01 != 0,
            }
        }
        8 => {
            b.u16()?; // packet id
            let mut topics = Vec::new();
            while !b.data.is_empty() {
                topics.push(b.string()?);
                b.u8()?; // requested QoS
            }
            Packet::Subscribe { topics }
        }
        9 => {
            b.u16()?; // packet id
            Packet::Suback {
                codes: b.data.to_vec(),
            }
        }
        12 => Packet::Pingreq,
        14 => Packet::Disconnect,
        0 | 15 => return Err(Malformed),
        _ => Packet::Other,
    })
}

/// A CONNACK with `code` and no session.
pub(crate) fn connack(code: u8) -> [u8; 4] {
    [0x20, 0x02, 0x00, code]
}

#[cfg(test)]
mod packet_id_tests {
    use super::*;

    #[test]
    fn ids_of_publish_and_pubrel() {
        // QoS 1 PUBLISH "a/b" id 0x1234 payload "x".
        let publish = [0x32, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x12, 0x34, b'x'];
        assert_eq!(packet_id(&publish), Some(0x1234));
        // QoS 0 carries none.
        assert_eq!(
            packet_id(&[0x30, 0x06, 0x00, 0x03, b'a', b'/', b'b', b'x']),
            None
        );
        assert_eq!(packet_id(&[0x62, 0x02, 0x00, 0x07]), Some(7));
        assert_eq!(packet_id(&[0x32, 0x02, 0x00]), None);
        assert_eq!(publish_ack(1, 0x1234), Some([0x40, 0x02, 0x12, 0x34]));
        assert_eq!(publish_ack(0, 1), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_packet(user: Option<&str>, pass: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4];
        let mut flags = 0x02;
        if user.is_some() {
            flags |= 0x80;
        }
        if pass.is_some() {
            flags |= 0x40;
        }
        body.push(flags);
        body.extend_from_slice(&15u16.to_be_bytes());
        for field in [Some(b"dev-1".as_slice()), user.map(str::as_bytes), pass]
            .into_iter()
            .flatten()
        {
            body.extend_from_slice(&(field.len() as u16).to_be_bytes());
            body.extend_from_slice(field);
        }
        let mut out = vec![0x10, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn connect_with_credentials_byte_by_byte() {
        let raw = connect_packet(Some("user"), Some(b"pw"));
        let mut d = Decoder::default();
        for (i, byte) in raw.iter().enumerate() {
            d.push(&[*byte]);
            let got = d.next_packet().unwrap();
            assert_eq!(got.is_some(), i == raw.len() - 1);
            if let Some((packet, bytes)) = got {
                assert_eq!(bytes, raw);
                assert_eq!(
                    packet,
                    Packet::Connect {
                        client_id: "dev-1".into(),
                        username: Some("user".into()),
                        password: Some(b"pw".to_vec()),
                        keep_alive: 15,
                        protocol_level: 4,
                    }
                );
            }
        }
    }

    #[test]
    fn publish_subscribe_and_the_small_ones() {
        let mut d = Decoder::default();
        // PUBLISH QoS 1 retain, topic "a/b", id 7, payload "hi"
        d.push(&[0x33, 9, 0, 3, b'a', b'/', b'b', 0, 7, b'h', b'i']);
        d.push(&[0x82, 8, 0, 1, 0, 3, b'c', b'm', b'd', 0]);
        d.push(&[0xC0, 0, 0xE0, 0, 0x20, 2, 0, 5]);
        // SUBACK id 1: first filter granted QoS 0, second refused
        d.push(&[0x90, 4, 0, 1, 0x00, 0x80]);
        let packets: Vec<Packet> = std::iter::from_fn(|| d.next_packet().unwrap())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            packets,
            [
                Packet::Publish {
                    topic: "a/b".into(),
                    payload: b"hi".to_vec(),
                    qos: 1,
                    retain: true
                },
                Packet::Subscribe {
                    topics: vec!["cmd".into()]
                },
                Packet::Pingreq,
                Packet::Disconnect,
                Packet::Connack { code: 5 },
                Packet::Suback {
                    codes: vec![0, 0x80]
                },
            ]
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut d = Decoder::default();
        d.push(&[0x10, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_packet(), Err(Malformed));
        let mut d = Decoder::default();
        d.push(&[0x10, 3, 0, 9, 1]);
        assert_eq!(d.next_packet(), Err(Malformed));
        let mut d = Decoder::default();
        d.push(&[0x00, 0]);
        assert_eq!(d.next_packet(), Err(Malformed));
    }
}
