//! A virtual board on a real network segment: when its firmware joins "Wi-Fi",
//! the board asks for an address by DHCP on a host interface, as the ESP8266's
//! lwIP does after associating, with the MAC in its efuse as the client's
//! hardware address; it then takes the address and the default route the lease
//! gives, and hands the firmware the lease's DNS and NTP servers.
//!
//! This is what lets a virtual board play a real board on the network the lab
//! serves (`hil lab --serve-network`): its traffic comes from the address DHCP
//! gave it and meets the lab's redirections like a real board's.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use tokio::net::UdpSocket;

/// What a DHCP server gave the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The board's address.
    pub ip: Ipv4Addr,
    /// Its prefix length (from the subnet mask; 24 when the server gave none).
    pub prefix: u8,
    /// The default gateway.
    pub router: Option<Ipv4Addr>,
    /// The first DNS server.
    pub dns: Option<Ipv4Addr>,
    /// The first NTP server (option 42).
    pub ntp: Option<Ipv4Addr>,
}

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;
/// How long one DISCOVER or REQUEST waits for its answer before it is sent again.
const RETRY: Duration = Duration::from_secs(1);

fn socket(interface: &str) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_broadcast(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, CLIENT_PORT)).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

fn message(kind: MessageType, xid: u32, mac: [u8; 6], hostname: &str) -> Message {
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootRequest)
        .set_htype(HType::Eth)
        .set_xid(xid)
        // The board has no address yet: the answer must come by broadcast.
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(&mac);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::Hostname(hostname.to_owned()));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::NtpServers,
        OptionCode::AddressLeaseTime,
        OptionCode::ServerIdentifier,
    ]));
    msg
}

/// Sends `msg` by broadcast until an answer of `wanted` kinds with `xid` comes,
/// or `deadline` passes.
async fn exchange(
    socket: &UdpSocket,
    msg: &Message,
    xid: u32,
    deadline: tokio::time::Instant,
) -> io::Result<Option<Message>> {
    let bytes = msg
        .to_vec()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let to = SocketAddr::from((Ipv4Addr::BROADCAST, SERVER_PORT));
    let mut buf = [0u8; 1500];
    while tokio::time::Instant::now() < deadline {
        socket.send_to(&bytes, to).await?;
        let retry = (tokio::time::Instant::now() + RETRY).min(deadline);
        while let Ok(received) = tokio::time::timeout_at(retry, socket.recv_from(&mut buf)).await {
            let (n, _) = received?;
            let Ok(reply) = Message::from_bytes(&buf[..n]) else {
                continue;
            };
            if reply.opcode() == Opcode::BootReply && reply.xid() == xid {
                return Ok(Some(reply));
            }
        }
    }
    Ok(None)
}

fn kind(msg: &Message) -> Option<MessageType> {
    match msg.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => Some(*t),
        _ => None,
    }
}

fn first_v4(msg: &Message, code: OptionCode) -> Option<Ipv4Addr> {
    match msg.opts().get(code) {
        Some(
            DhcpOption::Router(v) | DhcpOption::DomainNameServer(v) | DhcpOption::NtpServers(v),
        ) => v.first().copied(),
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// Asks for a lease on `interface` (DISCOVER, OFFER, REQUEST, ACK) as the board
/// with `mac`; `None` when no server answered before `timeout`.
pub async fn lease(
    interface: &str,
    mac: [u8; 6],
    hostname: &str,
    timeout: Duration,
) -> io::Result<Option<Lease>> {
    let socket = socket(interface)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let xid =
        u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ std::process::id().rotate_left(16);
    let discover = message(MessageType::Discover, xid, mac, hostname);
    let Some(offer) = exchange(&socket, &discover, xid, deadline).await? else {
        return Ok(None);
    };
    if kind(&offer) != Some(MessageType::Offer) {
        return Ok(None);
    }
    let offered = offer.yiaddr();
    let mut request = message(MessageType::Request, xid, mac, hostname);
    request
        .opts_mut()
        .insert(DhcpOption::RequestedIpAddress(offered));
    if let Some(server) = first_v4(&offer, OptionCode::ServerIdentifier) {
        request
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(server));
    }
    let Some(ack) = exchange(&socket, &request, xid, deadline).await? else {
        return Ok(None);
    };
    if kind(&ack) != Some(MessageType::Ack) {
        return Ok(None);
    }
    let prefix = match ack.opts().get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => u32::from(*mask).count_ones() as u8,
        _ => 24,
    };
    Ok(Some(Lease {
        ip: ack.yiaddr(),
        prefix,
        router: first_v4(&ack, OptionCode::Router),
        dns: first_v4(&ack, OptionCode::DomainNameServer),
        ntp: first_v4(&ack, OptionCode::NtpServers),
    }))
}

/// Puts the lease's address on `interface` and its router as the default
/// route (the `ip` command, as a DHCP client's script does).
pub async fn configure(interface: &str, lease: &Lease) -> io::Result<()> {
    let ip = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("ip")
            .args(&args)
            .output()
            .await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    ip(vec![
        "addr".into(),
        "replace".into(),
        format!("{}/{}", lease.ip, lease.prefix),
        "dev".into(),
        interface.into(),
    ])
    .await?;
    if let Some(router) = lease.router {
        ip(vec![
            "route".into(),
            "replace".into(),
            "default".into(),
            "via".into(),
            router.to_string(),
            "dev".into(),
            interface.into(),
        ])
        .await?;
    }
    Ok(())
}
