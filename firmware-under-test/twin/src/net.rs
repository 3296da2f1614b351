//! The device's own DNS and SNTP clients: real packets on UDP sockets bound to the
//! board's address, so the lab sees (and applies policy to) this board.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The server said the name does not exist.
    #[error("NXDOMAIN")]
    NxDomain,
    /// No answer before the timeout.
    #[error("timeout")]
    Timeout,
    /// An answer without an address, or garbled.
    #[error("no usable answer")]
    NoAnswer,
    /// The socket failed.
    #[error("socket: {0}")]
    Io(String),
}

async fn udp_exchange(
    local: Ipv4Addr,
    server: SocketAddr,
    request: &[u8],
    timeout: Duration,
    mut accept: impl FnMut(&[u8]) -> bool,
) -> Result<Vec<u8>, LookupError> {
    let io = |e: std::io::Error| LookupError::Io(e.to_string());
    let socket = UdpSocket::bind((local, 0)).await.map_err(io)?;
    socket.send_to(request, server).await.map_err(io)?;
    let mut buf = vec![0u8; 1500];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        match received {
            Err(_) => return Err(LookupError::Timeout),
            Ok(Err(e)) => return Err(io(e)),
            Ok(Ok((n, from))) if from == server && accept(&buf[..n]) => {
                return Ok(buf[..n].to_vec())
            }
            // Stray datagrams (wrong source or id) are ignored, as lwIP does.
            Ok(Ok(_)) => continue,
        }
    }
}

/// Resolves `host` to an IPv4 address with one A query (lwIP's resolver asks for A
/// records only).
pub async fn resolve(
    local: Ipv4Addr,
    server: SocketAddr,
    host: &str,
    timeout: Duration,
) -> Result<Ipv4Addr, LookupError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let id = (std::process::id() as u16) ^ (host.len() as u16).rotate_left(7);
    let mut query = Vec::with_capacity(32 + host.len());
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
    for label in host.trim_end_matches('.').split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty() || bytes.len() > 63 {
            return Err(LookupError::NoAnswer);
        }
        query.push(bytes.len() as u8);
        query.extend_from_slice(bytes);
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    let reply = udp_exchange(local, server, &query, timeout, |r| {
        r.get(..2) == Some(&id.to_be_bytes())
    })
    .await?;
    parse_a_reply(&reply, query.len())
}

fn parse_a_reply(reply: &[u8], question_end: usize) -> Result<Ipv4Addr, LookupError> {
    let flags = reply.get(2..4).ok_or(LookupError::NoAnswer)?;
    if flags[1] & 0x0f == 3 {
        return Err(LookupError::NxDomain);
    }
    if flags[1] & 0x0f != 0 {
        return Err(LookupError::NoAnswer);
    }
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    let mut pos = question_end;
    for _ in 0..answers {
        // Name: a compression pointer or labels.
        loop {
            let len = *reply.get(pos).ok_or(LookupError::NoAnswer)?;
            if len & 0xc0 == 0xc0 {
                pos += 2;
                break;
            }
            pos += 1 + len as usize;
            if len == 0 {
                break;
            }
        }
        let header = reply.get(pos..pos + 10).ok_or(LookupError::NoAnswer)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let rdlen = u16::from_be_bytes([header[8], header[9]]) as usize;
        let data = reply
            .get(pos + 10..pos + 10 + rdlen)
            .ok_or(LookupError::NoAnswer)?;
        if rtype == 1 && rdlen == 4 {
            return Ok(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + rdlen;
    }
    Err(LookupError::NoAnswer)
}

/// Seconds between 1900 (NTP's era 0) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Seconds in one NTP era (the 32-bit seconds field wraps on 2036-02-07).
const NTP_ERA: u64 = 1 << 32;

/// Unix seconds for the seconds field of an NTP timestamp, by the rule of RFC 4330
/// section 3 that lwIP's SNTP (the ESP8266 core's) applies: a set top bit is era 0
/// (1968-2036), a clear one era 1 (2036-2104). Reading every value as era 0 would
/// put a clock after 2036 back in 1900-1968 and hand BearSSL a 1970 time.
pub fn ntp_seconds_to_unix(seconds: u32) -> u64 {
    let since_1900 = if seconds & 0x8000_0000 != 0 {
        u64::from(seconds)
    } else {
        u64::from(seconds) + NTP_ERA
    };
    // Era-0 values before 1970 have no Unix time the device could hold; the
    // device clock starts at 0 as it does before any sync.
    since_1900.saturating_sub(NTP_UNIX_OFFSET)
}

/// Asks an SNTP server for the time; returns Unix seconds from the transmit
/// timestamp.
pub async fn sntp(
    local: Ipv4Addr,
    server: SocketAddr,
    timeout: Duration,
) -> Result<u64, LookupError> {
    let mut request = [0u8; 48];
    // LI 0, version 4, mode 3 (client).
    request[0] = 0b00_100_011;
    // A transmit timestamp the server must echo as "originate", so stale or
    // spoofed answers are told apart.
    let nonce = u64::from(std::process::id()) << 32 | 0x5eed;
    request[40..48].copy_from_slice(&nonce.to_be_bytes());
    let reply = udp_exchange(local, server, &request, timeout, |r| {
        r.len() >= 48 && r[24..32] == nonce.to_be_bytes() && r[0] & 0x07 == 4
    })
    .await?;
    let seconds = u32::from_be_bytes([reply[40], reply[41], reply[42], reply[43]]);
    if seconds == 0 || reply[1] == 0 {
        // Stratum 0 is a kiss-o'-death: no time.
        return Err(LookupError::NoAnswer);
    }
    Ok(ntp_seconds_to_unix(seconds))
}

/// Splits `host[:port]` with a default port.
pub fn host_port(text: &str, default_port: u16) -> (String, u16) {
    match text.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(port) => (host.to_owned(), port),
            Err(_) => (text.to_owned(), default_port),
        },
        None => (text.to_owned(), default_port),
    }
}

/// Resolves a `host[:port]` server address through DNS when it is not an address.
pub async fn server_address(
    local: Ipv4Addr,
    dns: Option<SocketAddr>,
    text: &str,
    default_port: u16,
    timeout: Duration,
) -> Result<SocketAddr, LookupError> {
    let (host, port) = host_port(text, default_port);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let dns = dns.ok_or(LookupError::Timeout)?;
    let ip = resolve(local, dns, &host, timeout).await?;
    Ok(SocketAddr::new(IpAddr::V4(ip), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's encoding of a Unix time (harness/src/lab/ntp.rs `to_ntp`): seconds
    /// since 1900, truncated to 32 bits, so instants after 2036 land in era 1.
    fn lab_ntp_seconds(unix: i64) -> u32 {
        (unix + NTP_UNIX_OFFSET as i64) as u32
    }

    /// 2040-01-01T00:00:00Z and 2026-01-01T00:00:00Z.
    const IN_2040: i64 = 2_208_988_800;
    const IN_2026: i64 = 1_767_225_600;

    #[test]
    fn an_instant_after_2036_reads_as_era_1_not_as_1970() {
        let seconds = lab_ntp_seconds(IN_2040);
        assert_eq!(seconds & 0x8000_0000, 0, "the lab wrote an era-1 value");
        assert_eq!(ntp_seconds_to_unix(seconds), IN_2040 as u64);
    }

    #[test]
    fn an_instant_before_2036_reads_as_era_0() {
        let seconds = lab_ntp_seconds(IN_2026);
        assert_ne!(seconds & 0x8000_0000, 0);
        assert_eq!(ntp_seconds_to_unix(seconds), IN_2026 as u64);
    }

    #[test]
    fn the_era_boundary_and_the_rules_limits() {
        // 2036-02-07T06:28:15Z is the last second of era 0, 06:28:17Z early in era 1.
        assert_eq!(ntp_seconds_to_unix(u32::MAX), 2_085_978_495);
        assert_eq!(ntp_seconds_to_unix(1), 2_085_978_497);
        // The rule covers up to 2104-02-26T13:15:43Z ...
        assert_eq!(ntp_seconds_to_unix(0x7fff_ffff), 4_233_462_143);
        // ... and from 1968: the years before 1970 have no Unix time.
        assert_eq!(ntp_seconds_to_unix(0x8000_0000), 0);
    }

    /// One SNTP answer carrying `unix` as the lab encodes it, to whoever asks first.
    async fn answer_once(server: UdpSocket, unix: i64) {
        let mut request = [0u8; 48];
        let Ok((_, client)) = server.recv_from(&mut request).await else {
            return;
        };
        let mut reply = [0u8; 48];
        reply[0] = 0b00_100_100; // version 4, mode 4 (server)
        reply[1] = 1; // stratum 1
        reply[24..32].copy_from_slice(&request[40..48]);
        reply[40..44].copy_from_slice(&lab_ntp_seconds(unix).to_be_bytes());
        let _ = server.send_to(&reply, client).await;
    }

    #[tokio::test]
    async fn sntp_returns_the_era_1_time_a_server_sends() {
        for unix in [IN_2040, IN_2026] {
            let server = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let at = server.local_addr().unwrap();
            let answering = tokio::spawn(answer_once(server, unix));
            let got = sntp(Ipv4Addr::LOCALHOST, at, Duration::from_secs(5)).await;
            assert_eq!(got, Ok(unix as u64));
            answering.await.unwrap();
        }
    }

    #[test]
    fn host_port_splits_with_defaults() {
        assert_eq!(
            host_port("ntp.hil.test:1234", 123),
            ("ntp.hil.test".into(), 1234)
        );
        assert_eq!(host_port("ntp.hil.test", 123), ("ntp.hil.test".into(), 123));
    }

    #[test]
    fn truncated_replies_are_errors() {
        assert_eq!(parse_a_reply(&[0, 1], 12), Err(LookupError::NoAnswer));
        let mut nx = vec![0u8; 12];
        nx[3] = 3;
        assert_eq!(parse_a_reply(&nx, 12), Err(LookupError::NxDomain));
        let mut one_answer = vec![0u8; 12];
        one_answer[7] = 1;
        assert_eq!(parse_a_reply(&one_answer, 12), Err(LookupError::NoAnswer));
    }
}
