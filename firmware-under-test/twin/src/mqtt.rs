//! PubSubClient's side of MQTT 3.1.1: packet encoding, the state numbers
//! `state()` returns, and the size limits of its packet buffer.

/// PubSubClient `state()` values.
pub mod state {
    /// The server did not answer (CONNACK or PINGRESP) in time.
    pub const CONNECTION_TIMEOUT: i32 = -4;
    /// The connection broke.
    pub const CONNECTION_LOST: i32 = -3;
    /// The TCP or TLS connection could not be made.
    pub const CONNECT_FAILED: i32 = -2;
    /// Cleanly disconnected.
    pub const DISCONNECTED: i32 = -1;
    /// Connected.
    pub const CONNECTED: i32 = 0;
}

/// PubSubClient's default keepalive and socket timeout, seconds.
pub const KEEPALIVE_SECS: u16 = 15;
/// Seconds PubSubClient waits for CONNACK before giving up with -4.
pub const SOCKET_TIMEOUT_SECS: u64 = 15;
/// PubSubClient's fixed-header allowance when checking the buffer.
const MAX_HEADER: usize = 5;

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// CONNECT with clean session, the keepalive and optional credentials.
pub fn connect(client_id: &str, username: Option<&str>, password: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session
    if username.is_some() {
        flags |= 0x80;
        if password.is_some() {
            flags |= 0x40;
        }
    }
    body.push(flags);
    body.extend_from_slice(&KEEPALIVE_SECS.to_be_bytes());
    string(client_id.as_bytes(), &mut body);
    if let Some(user) = username {
        string(user.as_bytes(), &mut body);
        if let Some(pass) = password {
            string(pass.as_bytes(), &mut body);
        }
    }
    packet(0x10, &body)
}

/// PUBLISH at QoS 0, or `None` when PubSubClient's buffer is too small (it then
/// returns false and sends nothing).
pub fn publish(topic: &str, payload: &[u8], retain: bool, buffer: usize) -> Option<Vec<u8>> {
    if MAX_HEADER + 2 + topic.len() + payload.len() > buffer {
        return None;
    }
    let mut body = Vec::new();
    string(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload);
    Some(packet(0x30 | u8::from(retain), &body))
}

/// SUBSCRIBE at QoS 0, or `None` when the topic does not fit the buffer.
pub fn subscribe(packet_id: u16, topic: &str, buffer: usize) -> Option<Vec<u8>> {
    if 9 + topic.len() > buffer {
        return None;
    }
    let mut body = packet_id.to_be_bytes().to_vec();
    string(topic.as_bytes(), &mut body);
    body.push(0);
    Some(packet(0x82, &body))
}

/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// PINGRESP.
pub const PINGRESP: [u8; 2] = [0xD0, 0x00];
/// DISCONNECT.
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// A packet from the broker, as much as the device cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK with its return code.
    Connack(u8),
    /// PUBLISH (topic, payload).
    Publish(String, Vec<u8>),
    /// SUBACK.
    Suback,
    /// PINGRESP.
    Pingresp,
    /// PINGREQ from the server.
    Pingreq,
    /// Anything else.
    Other(u8),
}

/// Splits one whole packet off the front of `buf`, if there is one. Packets
/// larger than the device's buffer are consumed and dropped, as PubSubClient does.
pub fn take_packet(buf: &mut Vec<u8>, buffer: usize) -> Option<Option<Incoming>> {
    let first = *buf.first()?;
    let mut len = 0usize;
    let mut multiplier = 1usize;
    let mut pos = 1;
    loop {
        let byte = *buf.get(pos)?;
        len += (byte & 0x7f) as usize * multiplier;
        multiplier *= 128;
        pos += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if pos > 4 {
            // A malformed length: drop everything we have.
            buf.clear();
            return Some(None);
        }
    }
    if buf.len() < pos + len {
        return None;
    }
    let body: Vec<u8> = buf[pos..pos + len].to_vec();
    buf.drain(..pos + len);
    if pos + len > buffer {
        return Some(None);
    }
    let incoming = match first >> 4 {
        2 => Incoming::Connack(*body.get(1).unwrap_or(&0xff)),
        3 => {
            let tlen = u16::from_be_bytes([*body.first().unwrap_or(&0), *body.get(1).unwrap_or(&0)])
                as usize;
            let topic = body
                .get(2..2 + tlen)
                .map(|t| String::from_utf8_lossy(t).into_owned());
            let qos = (first >> 1) & 3;
            let start = 2 + tlen + if qos > 0 { 2 } else { 0 };
            match (topic, body.get(start..)) {
                (Some(topic), Some(payload)) => Incoming::Publish(topic, payload.to_vec()),
                _ => return Some(None),
            }
        }
        9 => Incoming::Suback,
        12 => Incoming::Pingreq,
        13 => Incoming::Pingresp,
        other => Incoming::Other(other),
    };
    Some(Some(incoming))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_carries_level_4_keepalive_and_credentials() {
        let p = connect("dev", Some("u"), Some("p"));
        assert_eq!(p[0], 0x10);
        assert_eq!(&p[4..8], b"MQTT");
        assert_eq!(p[8], 4);
        assert_eq!(p[9], 0xC2);
        assert_eq!(u16::from_be_bytes([p[10], p[11]]), 15);
    }

    #[test]
    fn publishes_larger_than_the_buffer_are_refused() {
        assert!(publish("t", &[0u8; 248], false, 256).is_some());
        assert!(publish("t", &[0u8; 249], false, 256).is_none());
    }

    #[test]
    fn packets_are_split_even_when_they_arrive_in_pieces() {
        let whole = publish("a/b", b"hi", false, 256).unwrap();
        let mut buf = whole[..3].to_vec();
        assert_eq!(take_packet(&mut buf, 256), None);
        buf.extend_from_slice(&whole[3..]);
        buf.extend_from_slice(&PINGRESP);
        assert_eq!(
            take_packet(&mut buf, 256),
            Some(Some(Incoming::Publish("a/b".into(), b"hi".to_vec())))
        );
        assert_eq!(take_packet(&mut buf, 256), Some(Some(Incoming::Pingresp)));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_malformed_length_does_not_panic() {
        let mut buf = vec![0x30, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(take_packet(&mut buf, 256), Some(None));
    }
}
