//! A DNS server (UDP) for the lab's names: `*.hil.test` and any name mapped at run
//! time (a production broker's host name, for black-box runs) resolve to the lab's
//! address; each device's policy may turn answers into NXDOMAIN or silence.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use super::policy::{DnsMode, DnsPolicy, PolicyTable};
use crate::timeline::{DnsAnswer, EventKind, Source, Timeline};

/// The lab's own domain: every name under it is the lab.
pub const LAB_DOMAIN: &str = "hil.test";
/// Answers are short-lived: a scenario may change a device's policy at any time.
const TTL: u32 = 5;

/// Names mapped to the lab at run time, shared with the [`crate::lab::Lab`] handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameMap {
    names: Arc<RwLock<BTreeSet<String>>>,
}

/// A name in the form the server compares: lower case, no trailing dot.
pub(crate) fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl NameMap {
    pub fn insert(&self, name: &str) {
        if let Ok(mut names) = self.names.write() {
            names.insert(normalise(name));
        }
    }

    pub fn is_lab_name(&self, name: &str) -> bool {
        let name = normalise(name);
        name == LAB_DOMAIN
            || name.ends_with(&format!(".{LAB_DOMAIN}"))
            || self.names.read().is_ok_and(|n| n.contains(&name))
    }
}

/// What every query of the DNS server shares.
pub(crate) struct DnsShared {
    pub policies: PolicyTable,
    pub names: NameMap,
    pub address: IpAddr,
    pub timeline: Timeline,
}

/// The reply to `query` and what it did, or `None` when the bytes are no query.
pub(crate) fn respond(
    request: &[u8],
    policy: &DnsPolicy,
    names: &NameMap,
    address: IpAddr,
) -> Option<(Option<Vec<u8>>, String, String, DnsAnswer)> {
    let query = Message::from_vec(request).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let question = query.queries.first()?.clone();
    let name = normalise(&question.name().to_ascii());
    let qtype = question.query_type();
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.authoritative = true;
    reply.add_query(question.clone());
    let known = names.is_lab_name(&name);
    let outcome = if query.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        DnsAnswer::NxDomain
    } else {
        match policy.mode {
            DnsMode::Silent => {
                return Some((None, name, qtype.to_string(), DnsAnswer::Silent));
            }
            DnsMode::NxDomain => {
                reply.metadata.response_code = ResponseCode::NXDomain;
                DnsAnswer::NxDomain
            }
            DnsMode::Answer if !known || policy.unresolved.contains(&name) => {
                reply.metadata.response_code = ResponseCode::NXDomain;
                DnsAnswer::NxDomain
            }
            DnsMode::Answer => {
                let rdata = match (qtype, address) {
                    (RecordType::A, IpAddr::V4(v4)) => Some(RData::A(A(v4))),
                    (RecordType::AAAA, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(v6))),
                    (RecordType::ANY, IpAddr::V4(v4)) => Some(RData::A(A(v4))),
                    (RecordType::ANY, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(v6))),
                    // The name exists but has no record of that type: NOERROR, empty.
                    _ => None,
                };
                if let Some(rdata) = rdata {
                    reply.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
                }
                DnsAnswer::Address { ip: address }
            }
        }
    };
    let bytes = reply.to_vec().ok()?;
    Some((Some(bytes), name, qtype.to_string(), outcome))
}

/// Serves queries until `shutdown` fires.
pub(crate) async fn serve(
    socket: UdpSocket,
    shared: Arc<DnsShared>,
    shutdown: watch::Receiver<bool>,
) {
    super::udp::serve(socket, 4096, shutdown, |datagram, peer| {
        let policy = shared.policies.get(peer.ip()).dns;
        let (reply, name, qtype, answer) =
            respond(datagram, &policy, &shared.names, shared.address)?;
        let timeline = &shared.timeline;
        let record = move || {
            let kind = EventKind::DnsQuery {
                peer,
                name,
                qtype,
                answer,
            };
            timeline.record(Source::Dns, Some(peer.ip()), kind);
        };
        Some((reply, record))
    })
    .await;
}

/// How long a DNS-over-TCP connection may sit idle before the server closes it
/// (RFC 7766 suggests seconds, not minutes).
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves DNS over TCP (RFC 1035 4.2.2: each message behind a two-byte length)
/// until `shutdown` fires: what a served network redirects TCP port 53 to.
pub(crate) async fn serve_tcp(
    listener: TcpListener,
    shared: Arc<DnsShared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.changed() => {}
                _ = tcp_connection(stream, peer, &shared) => {}
            }
        });
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    shared: &DnsShared,
) -> Option<()> {
    loop {
        let len = tokio::time::timeout(TCP_IDLE, stream.read_u16())
            .await
            .ok()?
            .ok()?;
        let mut request = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut request))
            .await
            .ok()?
            .ok()?;
        let policy = shared.policies.get(peer.ip()).dns;
        let (reply, name, qtype, answer) =
            respond(&request, &policy, &shared.names, shared.address)?;
        if let Some(reply) = &reply {
            let len = u16::try_from(reply.len()).ok()?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(reply);
            stream.write_all(&framed).await.ok()?;
        }
        let kind = EventKind::DnsQuery {
            peer,
            name,
            qtype,
            answer,
        };
        shared.timeline.record(Source::Dns, Some(peer.ip()), kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    #[test]
    fn lab_names_resolve_others_do_not() {
        let names = NameMap::default();
        names.insert("Mqtt.Example.COM.");
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let policy = DnsPolicy::default();
        for name in [
            "broker.hil.test.",
            "ntp.hil.test",
            "mqtt.broker.hil.test",
            "mqtt.example.com",
        ] {
            let (reply, _, _, answer) =
                respond(&query(name, RecordType::A), &policy, &names, ip).unwrap();
            assert_eq!(answer, DnsAnswer::Address { ip }, "{name}");
            let reply = Message::from_vec(&reply.unwrap()).unwrap();
            assert_eq!(reply.answers.len(), 1);
        }
        let (_, _, _, answer) =
            respond(&query("example.org", RecordType::A), &policy, &names, ip).unwrap();
        assert_eq!(answer, DnsAnswer::NxDomain);
    }

    #[tokio::test]
    async fn queries_over_tcp_are_answered_and_recorded() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeline = Timeline::new();
        let shared = Arc::new(DnsShared {
            policies: PolicyTable::new(Default::default()),
            names: NameMap::default(),
            address: "10.77.0.1".parse().unwrap(),
            timeline: timeline.clone(),
        });
        let (stop, rx) = watch::channel(false);
        let server = tokio::spawn(serve_tcp(listener, shared, rx));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // Two queries on one connection, as RFC 7766 allows.
        for _ in 0..2 {
            let q = query("broker.hil.test", RecordType::A);
            let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            stream.write_all(&framed).await.unwrap();
            let len = stream.read_u16().await.unwrap();
            let mut reply = vec![0u8; usize::from(len)];
            stream.read_exact(&mut reply).await.unwrap();
            let reply = Message::from_vec(&reply).unwrap();
            assert_eq!(reply.answers.len(), 1);
        }
        let seen = timeline.snapshot();
        assert_eq!(seen.len(), 2);
        assert!(matches!(
            &seen[0].kind,
            EventKind::DnsQuery { name, .. } if name == "broker.hil.test"
        ));
        stop.send(true).unwrap();
        server.await.unwrap();
    }

    #[test]
    fn policies_turn_answers_into_nxdomain_or_silence() {
        let names = NameMap::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut policy = DnsPolicy::default();
        policy.unresolved.insert("broker.hil.test".into());
        let q = query("broker.hil.test", RecordType::A);
        assert_eq!(
            respond(&q, &policy, &names, ip).unwrap().3,
            DnsAnswer::NxDomain
        );
        policy.mode = DnsMode::Silent;
        let (reply, _, _, answer) = respond(&q, &policy, &names, ip).unwrap();
        assert!(reply.is_none());
        assert_eq!(answer, DnsAnswer::Silent);
        assert!(respond(b"\x00\x01garbage", &policy, &names, ip).is_none());
    }
}
