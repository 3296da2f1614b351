//! An SNTP server (RFC 4330 answers in NTPv4 packets) reporting the lab clock to
//! each device as its policy says: exact, skewed, a fixed instant, or nothing.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::config::LabClock;
use super::policy::{NtpPolicy, PolicyTable};
use crate::timeline::{EventKind, Source, Timeline};

/// Seconds from the NTP era (1900-01-01) to the Unix epoch.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;
const PACKET_LEN: usize = 48;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;

/// What every request of the NTP server shares.
pub(crate) struct NtpShared {
    pub policies: PolicyTable,
    pub clock: LabClock,
    pub timeline: Timeline,
}

/// An instant as a 64-bit NTP timestamp (era 0; wraps in 2036 as NTP itself does).
pub(crate) fn to_ntp(t: OffsetDateTime) -> [u8; 8] {
    let secs = (t.unix_timestamp() + NTP_UNIX_OFFSET) as u32;
    let frac = ((u64::from(t.nanosecond()) << 32) / 1_000_000_000) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

/// The answer to one client request, or `None` for a packet that is not one.
pub(crate) fn answer(
    request: &[u8],
    received: OffsetDateTime,
    transmit: OffsetDateTime,
) -> Option<[u8; PACKET_LEN]> {
    if request.len() < PACKET_LEN || request[0] & 0x07 != MODE_CLIENT {
        return None;
    }
    let version = (request[0] >> 3) & 0x07;
    let mut reply = [0u8; PACKET_LEN];
    // LI 0 (no warning), the client's version (1..4 answered alike), mode 4.
    reply[0] = (version.clamp(1, 4) << 3) | MODE_SERVER;
    reply[1] = 1; // stratum 1: the lab clock is the reference
    reply[2] = request[2].max(4); // poll interval, echoed
    reply[3] = (-20i8) as u8; // precision about a microsecond
                              // Root delay and dispersion 0; reference id "LAB".
    reply[12..16].copy_from_slice(b"LAB\0");
    reply[16..24].copy_from_slice(&to_ntp(transmit));
    reply[24..32].copy_from_slice(&request[40..48]);
    reply[32..40].copy_from_slice(&to_ntp(received));
    reply[40..48].copy_from_slice(&to_ntp(transmit));
    Some(reply)
}

/// The instants an NTP timestamp can carry under RFC 4330's era rule: a set
/// top bit is 1968-2036 (era 0), a clear one 2036-2104 (era 1).
pub fn representable(t: OffsetDateTime) -> bool {
    let unix = t.unix_timestamp();
    let first = (1i64 << 31) - NTP_UNIX_OFFSET;
    let last = (1i64 << 32) + (1i64 << 31) - NTP_UNIX_OFFSET;
    (first..last).contains(&unix)
}

fn reported_time(policy: NtpPolicy, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match policy {
        NtpPolicy::Exact => Some(now),
        NtpPolicy::Skewed(by) => now.checked_add(by),
        NtpPolicy::Fixed(at) => Some(at),
        NtpPolicy::Silent => None,
    }
    // A time NTP cannot carry is not answered (and recorded as not answered),
    // never sent wrapped around.
    .filter(|t| representable(*t))
}

/// Serves requests until `shutdown` fires.
pub(crate) async fn serve(
    socket: UdpSocket,
    shared: Arc<NtpShared>,
    shutdown: watch::Receiver<bool>,
) {
    super::udp::serve(socket, 512, shutdown, |datagram, peer| {
        let policy = shared.policies.get(peer.ip()).ntp;
        let reported = reported_time(policy, shared.clock.now());
        let reply = reported.and_then(|t| answer(datagram, t, t));
        let answered = reply.as_ref().and(reported).and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        let timeline = &shared.timeline;
        let record = move || {
            let kind = EventKind::NtpRequest { peer, answered };
            timeline.record(Source::Ntp, Some(peer.ip()), kind);
        };
        Some((reply.map(|r| r.to_vec()), record))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_reply_echoes_the_clients_transmit_time_and_carries_the_reported_time() {
        let mut request = [0u8; 48];
        request[0] = (4 << 3) | 3;
        request[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let t = datetime!(2026-01-01 0:00:00.5 UTC);
        let reply = answer(&request, t, t).unwrap();
        assert_eq!(reply[0], 0x24);
        assert_eq!(reply[1], 1);
        assert_eq!(&reply[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let secs = u32::from_be_bytes(reply[40..44].try_into().unwrap());
        assert_eq!(i64::from(secs) - NTP_UNIX_OFFSET, t.unix_timestamp());
        let frac = u32::from_be_bytes(reply[44..48].try_into().unwrap());
        assert_eq!(frac, 1 << 31);
    }

    #[test]
    fn times_after_2036_wrap_into_era_1_as_rfc_4330_says() {
        // RFC 4330 section 3: a clear top bit means 2036-2104.
        let t = datetime!(2040-01-01 0:00 UTC);
        let secs = u32::from_be_bytes(to_ntp(t)[..4].try_into().unwrap());
        assert_eq!(secs & 0x8000_0000, 0);
        assert_eq!(
            i64::from(secs) + (1 << 32) - NTP_UNIX_OFFSET,
            t.unix_timestamp()
        );
    }

    #[test]
    fn times_ntp_cannot_carry_are_not_answered() {
        let now = datetime!(2026-12-02 0:00 UTC);
        let years = |n: i64| time::Duration::days(365 * n);
        assert!(reported_time(NtpPolicy::Skewed(years(10)), now).is_some());
        assert!(reported_time(NtpPolicy::Skewed(years(-50)), now).is_some());
        assert!(reported_time(NtpPolicy::Skewed(years(100)), now).is_none());
        assert!(reported_time(NtpPolicy::Skewed(years(-3000)), now).is_none());
        assert!(reported_time(NtpPolicy::Fixed(datetime!(2104-01-01 0:00 UTC)), now).is_some());
        assert!(reported_time(NtpPolicy::Fixed(datetime!(1900-01-01 0:00 UTC)), now).is_none());
    }

    #[test]
    fn server_packets_and_short_ones_get_no_answer() {
        let mut request = [0u8; 48];
        request[0] = (4 << 3) | 4;
        let t = datetime!(2026-01-01 0:00 UTC);
        assert!(answer(&request, t, t).is_none());
        assert!(answer(&request[..20], t, t).is_none());
    }
}
