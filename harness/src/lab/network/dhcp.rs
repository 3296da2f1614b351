//! The lab's DHCP server (RFC 2131) for one served network: DISCOVER/OFFER,
//! REQUEST/ACK or NAK (selecting, init-reboot, renewing, rebinding), RELEASE,
//! DECLINE and INFORM, with the lab as router, DNS server and NTP server.
//! Packets are parsed and built with `dhcproto`; the decisions are a pure
//! function of the request, the lease book and a clock ([`Server::handle`]), so
//! they are unit tested without sockets.
//!
//! Replies go to the relay when there is one, by unicast to a client that
//! already has its address (renewing, INFORM), and otherwise by broadcast on the
//! interface: a client without an address cannot be reached by unicast unless
//! the server writes an ARP entry by hand, and every client (the ESP8266's lwIP,
//! udhcpc, dhclient) accepts a broadcast reply.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::addr::{Ipv4Cidr, MacAddr};
use crate::timeline::{EventKind, Source, Timeline};

/// The server's port.
pub(crate) const SERVER_PORT: u16 = 67;
/// The clients' port.
pub(crate) const CLIENT_PORT: u16 = 68;
/// How long an offered address stays reserved for the client it was offered to.
const OFFER_HOLD: Duration = Duration::from_secs(60);
/// How long an address a client declined (someone else answers ARP for it) is
/// kept out of the pool.
const DECLINE_HOLD: Duration = Duration::from_secs(600);
/// BOOTP's minimum message size (RFC 1542): some clients drop shorter replies.
const MIN_REPLY_LEN: usize = 300;

/// A lease the server has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The board's hardware address.
    pub mac: MacAddr,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The host name it sent (option 12), if any.
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Offered,
    Bound,
}

#[derive(Debug, Clone)]
struct Entry {
    mac: MacAddr,
    hostname: Option<String>,
    state: State,
    expires: Instant,
}

/// Who holds which address, keyed by address.
#[derive(Debug, Default)]
struct LeaseBook {
    entries: BTreeMap<Ipv4Addr, Entry>,
    declined: BTreeMap<Ipv4Addr, Instant>,
}

impl LeaseBook {
    fn entry_of(&self, mac: MacAddr, now: Instant) -> Option<(Ipv4Addr, &Entry)> {
        self.entries
            .iter()
            .find(|(_, e)| e.mac == mac && e.expires > now)
            .map(|(ip, e)| (*ip, e))
    }

    /// Whether `ip` may be given to `mac` now.
    fn free_for(&self, ip: Ipv4Addr, mac: MacAddr, now: Instant) -> bool {
        let declined = self.declined.get(&ip).is_some_and(|until| *until > now);
        let held = self
            .entries
            .get(&ip)
            .is_some_and(|e| e.mac != mac && e.expires > now);
        !declined && !held
    }

    fn put(&mut self, ip: Ipv4Addr, entry: Entry) {
        // One address per board: drop whatever else it held.
        let mac = entry.mac;
        self.entries.retain(|other, e| *other == ip || e.mac != mac);
        self.entries.insert(ip, entry);
    }
}

/// What the server's pool and options are made of.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    /// The served network.
    pub subnet: Ipv4Cidr,
    /// The lab's address: server identifier, router, DNS and NTP server.
    pub address: Ipv4Addr,
    /// Addresses on the network that are not the server's to give (the
    /// interface's own).
    pub reserved: Vec<Ipv4Addr>,
    /// How long a lease lasts.
    pub lease_time: Duration,
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// 255.255.255.255:68 on the interface.
    Broadcast,
    /// The client's own address, port 68.
    Client(Ipv4Addr),
    /// A relay agent, port 67.
    Relay(Ipv4Addr),
}

impl Destination {
    fn socket_addr(self) -> SocketAddr {
        SocketAddr::V4(match self {
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
            Destination::Client(ip) => SocketAddrV4::new(ip, CLIENT_PORT),
            Destination::Relay(ip) => SocketAddrV4::new(ip, SERVER_PORT),
        })
    }
}

/// What one request led to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The reply and where it goes.
    pub reply: Option<(Message, Destination)>,
    /// The lease acknowledged, to record.
    pub leased: Option<Lease>,
}

/// The DHCP server's state: its configuration and lease book.
#[derive(Debug)]
pub(crate) struct Server {
    config: ServerConfig,
    book: LeaseBook,
    /// Addresses promised to boards before they ask (see [`Server::reserve`]).
    reservations: BTreeMap<MacAddr, Ipv4Addr>,
}

impl Server {
    pub fn new(config: ServerConfig) -> Server {
        Server {
            config,
            book: LeaseBook::default(),
            reservations: BTreeMap::new(),
        }
    }

    fn lease_secs(&self) -> u32 {
        u32::try_from(self.config.lease_time.as_secs()).unwrap_or(u32::MAX)
    }

    /// Whether `ip` belongs to the pool at all.
    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.config.subnet.is_host(ip)
            && ip != self.config.address
            && !self.config.reserved.contains(&ip)
    }

    fn available(&self, ip: Ipv4Addr, mac: MacAddr, now: Instant) -> bool {
        let promised_elsewhere = self
            .reservations
            .iter()
            .any(|(owner, promised)| *promised == ip && *owner != mac);
        self.in_pool(ip) && !promised_elsewhere && self.book.free_for(ip, mac, now)
    }

    /// Promises `mac` an address before it asks: the one it holds, or a free
    /// one. From then on it is offered that address and no other, and no other
    /// board is given it; asking again returns the same. `None` when the pool
    /// is exhausted.
    pub fn reserve(&mut self, mac: MacAddr, now: Instant) -> Option<Ipv4Addr> {
        if let Some(ip) = self.reservations.get(&mac) {
            return Some(*ip);
        }
        let ip = self.choose(mac, None, now)?;
        self.reservations.insert(mac, ip);
        Some(ip)
    }

    /// The address to offer `mac`: the one it holds, the one it asks for, or the
    /// first free one.
    fn choose(&self, mac: MacAddr, requested: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        if let Some(ip) = self.reservations.get(&mac) {
            return Some(*ip);
        }
        if let Some((ip, _)) = self.book.entry_of(mac, now) {
            return Some(ip);
        }
        if let Some(ip) = requested.filter(|ip| self.available(*ip, mac, now)) {
            return Some(ip);
        }
        self.config
            .subnet
            .hosts()
            .find(|ip| self.available(*ip, mac, now))
    }

    /// The lease `mac` holds now, if bound.
    pub fn lease_for(&self, mac: MacAddr, now: Instant) -> Option<Ipv4Addr> {
        self.book
            .entry_of(mac, now)
            .filter(|(_, e)| e.state == State::Bound)
            .map(|(ip, _)| ip)
    }

    /// Every bound lease, by address.
    pub fn leases(&self, now: Instant) -> Vec<Lease> {
        self.book
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Bound && e.expires > now)
            .map(|(ip, e)| Lease {
                mac: e.mac,
                ip: *ip,
                hostname: e.hostname.clone(),
            })
            .collect()
    }

    /// Binds `ip` to `mac` if it may have it.
    fn bind(
        &mut self,
        mac: MacAddr,
        ip: Ipv4Addr,
        hostname: Option<String>,
        now: Instant,
    ) -> Option<Lease> {
        if !self.available(ip, mac, now) {
            return None;
        }
        self.book.put(
            ip,
            Entry {
                mac,
                hostname: hostname.clone(),
                state: State::Bound,
                expires: now + self.config.lease_time,
            },
        );
        Some(Lease { mac, ip, hostname })
    }

    /// Decides what to do with one request.
    pub fn handle(&mut self, request: &Message, now: Instant) -> Outcome {
        // Only Ethernet clients: the MAC is the board's identity. Checking the
        // length first also keeps `chaddr()` from slicing past its 16 bytes.
        if request.opcode() != Opcode::BootRequest
            || request.htype() != HType::Eth
            || request.hlen() != 6
        {
            return Outcome::default();
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&request.chaddr()[..6]);
        let mac = MacAddr(mac);
        let opts = request.opts();
        let requested = match opts.get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
            _ => None,
        };
        let server_id = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => None,
        };
        let hostname = match opts.get(OptionCode::Hostname) {
            Some(DhcpOption::Hostname(name)) if !name.is_empty() => Some(name.clone()),
            _ => None,
        };
        let ciaddr = request.ciaddr();
        match opts.msg_type() {
            Some(MessageType::Discover) => {
                let Some(ip) = self.choose(mac, requested, now) else {
                    // The pool is exhausted: no offer (RFC 2131 4.3.1).
                    return Outcome::default();
                };
                let state = match self.book.entries.get(&ip) {
                    Some(e) if e.mac == mac && e.state == State::Bound && e.expires > now => {
                        State::Bound
                    }
                    _ => State::Offered,
                };
                let expires = match state {
                    State::Bound => self
                        .book
                        .entries
                        .get(&ip)
                        .map_or(now + OFFER_HOLD, |e| e.expires),
                    State::Offered => now + OFFER_HOLD,
                };
                self.book.put(
                    ip,
                    Entry {
                        mac,
                        hostname,
                        state,
                        expires,
                    },
                );
                Outcome {
                    reply: Some(self.reply(request, MessageType::Offer, ip)),
                    leased: None,
                }
            }
            Some(MessageType::Request) => {
                let wanted = match (server_id, requested) {
                    // SELECTING: the client picked a server.
                    (Some(id), _) if id != self.config.address => {
                        // Another server's offer won: ours is free again.
                        if let Some(ip) = self
                            .book
                            .entry_of(mac, now)
                            .filter(|(_, e)| e.state == State::Offered)
                            .map(|(ip, _)| ip)
                        {
                            self.book.entries.remove(&ip);
                        }
                        return Outcome::default();
                    }
                    (Some(_), Some(ip)) => ip,
                    (Some(_), None) if !ciaddr.is_unspecified() => ciaddr,
                    (Some(_), None) => return self.nak(request),
                    // INIT-REBOOT: the client asks for the address it had.
                    (None, Some(ip)) => ip,
                    // RENEWING or REBINDING: the client uses its address.
                    (None, None) if !ciaddr.is_unspecified() => ciaddr,
                    (None, None) => return self.nak(request),
                };
                // A board promised an address gets that one: asking for another
                // (an old lease, say) is refused so it starts over with DISCOVER.
                if self.reservations.get(&mac).is_some_and(|ip| *ip != wanted) {
                    return self.nak(request);
                }
                match self.bind(mac, wanted, hostname, now) {
                    Some(lease) => Outcome {
                        reply: Some(self.reply(request, MessageType::Ack, wanted)),
                        leased: Some(lease),
                    },
                    None => self.nak(request),
                }
            }
            Some(MessageType::Release) => {
                if self.book.entries.get(&ciaddr).is_some_and(|e| e.mac == mac) {
                    self.book.entries.remove(&ciaddr);
                }
                Outcome::default()
            }
            Some(MessageType::Decline) => {
                if let Some(ip) = requested {
                    if self.book.entries.get(&ip).is_some_and(|e| e.mac == mac) {
                        self.book.entries.remove(&ip);
                    }
                    if self.in_pool(ip) {
                        self.book.declined.insert(ip, now + DECLINE_HOLD);
                    }
                }
                Outcome::default()
            }
            Some(MessageType::Inform) if !ciaddr.is_unspecified() => Outcome {
                reply: Some(self.reply(request, MessageType::Ack, Ipv4Addr::UNSPECIFIED)),
                leased: None,
            },
            _ => Outcome::default(),
        }
    }

    fn nak(&self, request: &Message) -> Outcome {
        let mut reply = self.base(request, Ipv4Addr::UNSPECIFIED);
        reply.set_ciaddr(Ipv4Addr::UNSPECIFIED);
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(MessageType::Nak));
        opts.insert(DhcpOption::ServerIdentifier(self.config.address));
        let to = if request.giaddr().is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::Relay(request.giaddr())
        };
        Outcome {
            reply: Some((reply, to)),
            leased: None,
        }
    }

    /// A reply carrying the header fields RFC 2131 table 3 asks for.
    fn base(&self, request: &Message, yiaddr: Ipv4Addr) -> Message {
        let mut reply = Message::new_with_id(
            request.xid(),
            request.ciaddr(),
            yiaddr,
            Ipv4Addr::UNSPECIFIED,
            request.giaddr(),
            request.chaddr(),
        );
        reply.set_opcode(Opcode::BootReply);
        reply.set_htype(HType::Eth);
        reply.set_flags(request.flags());
        reply
    }

    /// An OFFER or ACK with the network's options: 1 subnet mask, 3 router, 6 DNS,
    /// 28 broadcast, 42 NTP, 51 lease time (58/59 renewal and rebinding), 54
    /// server identifier. An ACK to INFORM carries no lease time (RFC 2131 3.4).
    fn reply(
        &self,
        request: &Message,
        kind: MessageType,
        yiaddr: Ipv4Addr,
    ) -> (Message, Destination) {
        let mut reply = self.base(request, yiaddr);
        let lab = self.config.address;
        let inform = request.opts().msg_type() == Some(MessageType::Inform);
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(lab));
        opts.insert(DhcpOption::SubnetMask(self.config.subnet.netmask()));
        opts.insert(DhcpOption::Router(vec![lab]));
        opts.insert(DhcpOption::DomainNameServer(vec![lab]));
        opts.insert(DhcpOption::NtpServers(vec![lab]));
        opts.insert(DhcpOption::BroadcastAddr(self.config.subnet.broadcast()));
        if !inform {
            let secs = self.lease_secs();
            opts.insert(DhcpOption::AddressLeaseTime(secs));
            opts.insert(DhcpOption::Renewal(secs / 2));
            opts.insert(DhcpOption::Rebinding(secs / 8 * 7));
        }
        let to = if !request.giaddr().is_unspecified() {
            Destination::Relay(request.giaddr())
        } else if !request.ciaddr().is_unspecified() {
            Destination::Client(request.ciaddr())
        } else {
            Destination::Broadcast
        };
        (reply, to)
    }
}

/// The encoded reply, padded to BOOTP's minimum size.
pub(crate) fn encode(reply: &Message) -> Option<Vec<u8>> {
    let mut bytes = reply.to_vec().ok()?;
    if bytes.len() < MIN_REPLY_LEN {
        // Zero bytes after the end option are pad options.
        bytes.resize(MIN_REPLY_LEN, 0);
    }
    Some(bytes)
}

/// What the server task shares with the network's handle.
pub(crate) type Shared = Arc<Mutex<Server>>;

/// Serves requests on `socket` (port 67, bound to the interface) until
/// `shutdown` fires, recording every lease acknowledged.
pub(crate) async fn serve(
    socket: UdpSocket,
    server: Shared,
    timeline: Timeline,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 1500];
    loop {
        let n = tokio::select! {
            _ = shutdown.changed() => break,
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, _)) => n,
                Err(_) => {
                    // An adapter unplugged mid-run fails every receive: wait
                    // instead of spinning until it is back or the lab stops.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(request) = Message::from_bytes(&buf[..n]) else {
            continue;
        };
        let outcome = match server.lock() {
            Ok(mut server) => server.handle(&request, Instant::now()),
            Err(_) => break,
        };
        if let Some((reply, to)) = outcome.reply {
            if let Some(bytes) = encode(&reply) {
                let _ = socket.send_to(&bytes, to.socket_addr()).await;
            }
        }
        if let Some(lease) = outcome.leased {
            let lease_secs = server.lock().map_or(0, |s| s.lease_secs());
            timeline.record(
                Source::Harness,
                Some(lease.ip.into()),
                EventKind::DhcpLease {
                    mac: lease.mac.to_string(),
                    ip: lease.ip.into(),
                    hostname: lease.hostname,
                    lease_secs,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x18, 0xfe, 0x34, 0x48, 0x49, 0x01];
    const OTHER: [u8; 6] = [0x18, 0xfe, 0x34, 0x48, 0x49, 0x02];
    const LAB: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

    fn server() -> Server {
        Server::new(ServerConfig {
            subnet: "10.77.0.0/24".parse().unwrap(),
            address: LAB,
            reserved: vec![Ipv4Addr::new(10, 77, 0, 2)],
            lease_time: Duration::from_secs(3600),
        })
    }

    fn request(kind: MessageType, mac: [u8; 6], opts: Vec<DhcpOption>) -> Message {
        let u = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new(u, u, u, u, &mac);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o);
        }
        m
    }

    fn kind(m: &Message) -> Option<MessageType> {
        m.opts().msg_type()
    }

    /// The address the server offers `mac` for a DISCOVER, asking for `wanted`
    /// or for nothing in particular.
    fn offer(s: &mut Server, mac: [u8; 6], wanted: Option<Ipv4Addr>, now: Instant) -> Ipv4Addr {
        let opts = wanted
            .map(DhcpOption::RequestedIpAddress)
            .into_iter()
            .collect();
        s.handle(&request(MessageType::Discover, mac, opts), now)
            .reply
            .unwrap()
            .0
            .yiaddr()
    }

    /// A REQUEST for `ip`: naming the server it chose (SELECTING), or none when
    /// a rebooted board asks for its old address back (INIT-REBOOT).
    fn request_ip(
        s: &mut Server,
        mac: [u8; 6],
        server: Option<Ipv4Addr>,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Outcome {
        let mut opts = vec![DhcpOption::RequestedIpAddress(ip)];
        opts.extend(server.map(DhcpOption::ServerIdentifier));
        s.handle(&request(MessageType::Request, mac, opts), now)
    }

    /// Encodes and decodes, as the wire does.
    fn wire(m: &Message) -> Message {
        let bytes = encode(m).unwrap();
        assert!(bytes.len() >= MIN_REPLY_LEN);
        Message::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn discover_offer_request_ack_with_every_option() {
        let mut s = server();
        let now = Instant::now();
        let discover = request(
            MessageType::Discover,
            MAC,
            vec![DhcpOption::Hostname("esp-01".into())],
        );
        let out = s.handle(&wire(&discover), now);
        let (offer, to) = out.reply.unwrap();
        let offer = wire(&offer);
        assert_eq!(to, Destination::Broadcast);
        assert_eq!(kind(&offer), Some(MessageType::Offer));
        assert_eq!(offer.xid(), discover.xid());
        assert_eq!(offer.opcode(), Opcode::BootReply);
        assert_eq!(offer.chaddr(), MAC);
        // .1 is the lab, .2 the interface's: the first free is .3.
        let ip = offer.yiaddr();
        assert_eq!(ip, Ipv4Addr::new(10, 77, 0, 3));
        assert!(out.leased.is_none());
        // Offered is not leased.
        assert_eq!(s.lease_for(MacAddr(MAC), now), None);

        let req = request(
            MessageType::Request,
            MAC,
            vec![
                DhcpOption::ServerIdentifier(LAB),
                DhcpOption::RequestedIpAddress(ip),
                DhcpOption::Hostname("esp-01".into()),
            ],
        );
        let out = s.handle(&wire(&req), now);
        let (ack, to) = out.reply.unwrap();
        let ack = wire(&ack);
        assert_eq!(to, Destination::Broadcast);
        assert_eq!(kind(&ack), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), ip);
        let o = ack.opts();
        assert_eq!(
            o.get(OptionCode::SubnetMask),
            Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(
            o.get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![LAB]))
        );
        assert_eq!(
            o.get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![LAB]))
        );
        assert_eq!(
            o.get(OptionCode::NtpServers),
            Some(&DhcpOption::NtpServers(vec![LAB]))
        );
        assert_eq!(
            o.get(OptionCode::AddressLeaseTime),
            Some(&DhcpOption::AddressLeaseTime(3600))
        );
        assert_eq!(
            o.get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(LAB))
        );
        assert_eq!(
            out.leased,
            Some(Lease {
                mac: MacAddr(MAC),
                ip,
                hostname: Some("esp-01".into())
            })
        );
        assert_eq!(s.lease_for(MacAddr(MAC), now), Some(ip));
        // The lease runs out after its time.
        assert_eq!(
            s.lease_for(MacAddr(MAC), now + Duration::from_secs(3601)),
            None
        );
    }

    #[test]
    fn a_board_keeps_its_address_and_others_get_another() {
        let mut s = server();
        let now = Instant::now();
        let first = offer(&mut s, MAC, None, now);
        // The offer is held for the first board: the second gets the next one,
        // even when it asks for the first's.
        let second = offer(&mut s, OTHER, Some(first), now);
        assert_ne!(first, second);
        // Asking again gives the same address.
        let again = offer(&mut s, MAC, None, now);
        assert_eq!(again, first);
        // A REQUEST for the other board's offered address is refused.
        let out = request_ip(&mut s, MAC, Some(LAB), second, now);
        assert_eq!(kind(&out.reply.unwrap().0), Some(MessageType::Nak));
        assert!(out.leased.is_none());
    }

    #[test]
    fn another_servers_offer_frees_ours() {
        let mut s = server();
        let now = Instant::now();
        let ip = offer(&mut s, MAC, None, now);
        let out = request_ip(
            &mut s,
            MAC,
            Some(Ipv4Addr::new(10, 77, 0, 254)),
            Ipv4Addr::new(10, 77, 0, 99),
            now,
        );
        assert!(out.reply.is_none() && out.leased.is_none());
        let taken = offer(&mut s, OTHER, None, now);
        assert_eq!(taken, ip);
    }

    #[test]
    fn init_reboot_renew_release_and_decline() {
        let mut s = server();
        let now = Instant::now();
        let old = Ipv4Addr::new(10, 77, 0, 50);
        // A board that rebooted asks for the address it had (no server id): a
        // lab that restarted gives it back.
        let out = request_ip(&mut s, MAC, None, old, now);
        assert_eq!(kind(&out.reply.unwrap().0), Some(MessageType::Ack));
        assert_eq!(out.leased.unwrap().ip, old);
        // An address off the network is refused.
        let out = request_ip(&mut s, OTHER, None, Ipv4Addr::new(192, 168, 4, 2), now);
        let (nak, to) = out.reply.unwrap();
        assert_eq!(kind(&nak), Some(MessageType::Nak));
        assert_eq!(to, Destination::Broadcast);
        // Renewing: ciaddr set, reply by unicast to it, lease extended.
        let later = now + Duration::from_secs(1800);
        let mut renew = request(MessageType::Request, MAC, vec![]);
        renew.set_ciaddr(old);
        let out = s.handle(&renew, later);
        let (ack, to) = out.reply.unwrap();
        assert_eq!(kind(&ack), Some(MessageType::Ack));
        assert_eq!(ack.ciaddr(), old);
        assert_eq!(to, Destination::Client(old));
        assert!(out.leased.is_some());
        assert_eq!(
            s.lease_for(MacAddr(MAC), now + Duration::from_secs(3700)),
            Some(old)
        );
        // Another board cannot renew an address it does not hold.
        let mut theft = request(MessageType::Request, OTHER, vec![]);
        theft.set_ciaddr(old);
        assert_eq!(
            kind(&s.handle(&theft, later).reply.unwrap().0),
            Some(MessageType::Nak)
        );
        // Release: the address is free again.
        let mut release = request(MessageType::Release, MAC, vec![]);
        release.set_ciaddr(old);
        assert!(s.handle(&release, later).reply.is_none());
        assert_eq!(s.lease_for(MacAddr(MAC), later), None);
        // Decline: the address is kept out of the pool.
        let ip = offer(&mut s, OTHER, Some(old), later);
        assert_eq!(ip, old);
        let decline = request(
            MessageType::Decline,
            OTHER,
            vec![
                DhcpOption::RequestedIpAddress(old),
                DhcpOption::ServerIdentifier(LAB),
            ],
        );
        assert!(s.handle(&decline, later).reply.is_none());
        let next = offer(&mut s, OTHER, Some(old), later);
        assert_ne!(next, old);
    }

    #[test]
    fn a_reserved_address_goes_to_its_board_only() {
        let mut s = server();
        let now = Instant::now();
        let promised = s.reserve(MacAddr(MAC), now).unwrap();
        assert_eq!(s.reserve(MacAddr(MAC), now), Some(promised));
        // Another board asking for it is given another.
        let other = offer(&mut s, OTHER, Some(promised), now);
        assert_ne!(other, promised);
        assert_ne!(s.reserve(MacAddr(OTHER), now), Some(promised));
        // The board itself, rebooting with an old address in mind, is refused
        // and then offered the promised one.
        let out = request_ip(&mut s, MAC, None, Ipv4Addr::new(10, 77, 0, 200), now);
        assert_eq!(kind(&out.reply.unwrap().0), Some(MessageType::Nak));
        let offered = offer(&mut s, MAC, None, now);
        assert_eq!(offered, promised);
        let out = request_ip(&mut s, MAC, Some(LAB), promised, now);
        assert_eq!(out.leased.unwrap().ip, promised);
        assert_eq!(s.lease_for(MacAddr(MAC), now), Some(promised));
    }

    #[test]
    fn inform_gets_options_without_a_lease() {
        let mut s = server();
        let mut inform = request(MessageType::Inform, MAC, vec![]);
        let ip = Ipv4Addr::new(10, 77, 0, 77);
        inform.set_ciaddr(ip);
        let out = s.handle(&inform, Instant::now());
        let (ack, to) = out.reply.unwrap();
        assert_eq!(kind(&ack), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(ack.opts().get(OptionCode::AddressLeaseTime).is_none());
        assert!(ack.opts().get(OptionCode::NtpServers).is_some());
        assert_eq!(to, Destination::Client(ip));
        assert!(out.leased.is_none());
    }

    #[test]
    fn an_exhausted_pool_offers_nothing() {
        let mut s = Server::new(ServerConfig {
            subnet: "10.77.0.0/30".parse().unwrap(),
            address: Ipv4Addr::new(10, 77, 0, 1),
            reserved: vec![],
            lease_time: Duration::from_secs(60),
        });
        let now = Instant::now();
        let got = offer(&mut s, MAC, None, now);
        assert_eq!(got, Ipv4Addr::new(10, 77, 0, 2));
        assert!(s
            .handle(&request(MessageType::Discover, OTHER, vec![]), now)
            .reply
            .is_none());
        // Once the offer lapses, the address is free for the other board.
        let later = now + OFFER_HOLD + Duration::from_secs(1);
        assert!(s
            .handle(&request(MessageType::Discover, OTHER, vec![]), later)
            .reply
            .is_some());
    }

    #[test]
    fn hostile_packets_are_ignored() {
        let mut s = server();
        let now = Instant::now();
        // hlen 255: dhcproto's chaddr() would slice past its 16 bytes.
        let mut bytes = encode(&request(MessageType::Discover, MAC, vec![])).unwrap();
        bytes[2] = 255;
        if let Ok(m) = Message::from_bytes(&bytes) {
            assert!(s.handle(&m, now).reply.is_none());
        }
        // A reply (BOOTREPLY) is not a request.
        let mut reply = request(MessageType::Discover, MAC, vec![]);
        reply.set_opcode(Opcode::BootReply);
        assert!(s.handle(&reply, now).reply.is_none());
        // BOOTP without a message type, and junk.
        let u = Ipv4Addr::UNSPECIFIED;
        assert!(s
            .handle(&Message::new(u, u, u, u, &MAC), now)
            .reply
            .is_none());
        for junk in [&b""[..], b"\x01\x01\x06", &[0xffu8; 400]] {
            if let Ok(m) = Message::from_bytes(junk) {
                let _ = s.handle(&m, now);
            }
        }
    }
}
