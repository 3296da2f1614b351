//! A user-mode network between the board's Ethernet frames and services on the
//! host, as QEMU's user networking (slirp) gives a guest one: no TAP, no root.
//!
//! The board sees a private /24 that exists only here ([`NetConfig`], by default
//! 10.0.2.0/24 as in QEMU): a gateway that answers ARP for every address but the
//! board's, a DHCP server ([`dhcp`]) that gives the board its address, the
//! gateway, a DNS server and an NTP server (option 42). What the board sends to
//! any address on a forwarded port is carried to a host socket address: UDP
//! datagrams (DNS on 53, NTP on 123) through one host UDP socket per flow, TCP
//! connections (the broker's 8883) through one host TCP connection each, with
//! replies NATed back to the board as frames from the address it spoke to. The
//! board's TCP peer is smoltcp's TCP. Host sockets bind to
//! [`NetConfig::bind`] first, so a lab that tells boards apart by source
//! address (virtual board k from 127.0.1.k) sees this board's.
//!
//! DNS answers that point at the host's loopback are rewritten to the gateway
//! ([`dns`]), so the board's lwIP never sends to its own loopback.
//!
//! [`UserNet::exchange`] moves frames between a [`Machine`] and the network;
//! the network's clock is the board's (emulated) time.
//!
//! ```no_run
//! use esp8266_emu::net::{NetConfig, UserNet};
//!
//! let config = NetConfig::default()
//!     .forward_udp(53, "127.0.0.1:5353".parse().unwrap())
//!     .forward_tcp(8883, "127.0.0.1:8883".parse().unwrap());
//! let mut net = UserNet::new(config);
//! # fn serve(machine: &mut esp8266_emu::Machine, net: &mut UserNet) {
//! loop {
//!     machine.run(800_000).unwrap(); // 10 ms of the board
//!     net.exchange(machine).unwrap();
//! }
//! # }
//! ```

pub mod dhcp;
pub mod dns;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint,
};
use thiserror::Error;

use crate::machine::{Machine, CPU_HZ};

/// What went wrong on the host side.
#[derive(Debug, Error)]
pub enum NetError {
    /// A host socket could not be made or bound to the board's local address.
    #[error("cannot bind a host socket to {addr}: {source}")]
    Bind {
        /// The local address.
        addr: Ipv4Addr,
        /// Why.
        source: std::io::Error,
    },
}

/// A port the board may send to (on any address) and where the host serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The destination port the board uses.
    pub board_port: u16,
    /// The host's socket address that answers.
    pub host: SocketAddr,
}

/// The private network and what it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The gateway (router, DHCP server, every other address on the /24).
    pub gateway: Ipv4Addr,
    /// The gateway's MAC.
    pub gateway_mac: [u8; 6],
    /// The DNS server DHCP names (option 6).
    pub dns: Ipv4Addr,
    /// The NTP server DHCP names (option 42).
    pub ntp: Ipv4Addr,
    /// The board's address.
    pub board: Ipv4Addr,
    /// The DHCP lease, in seconds.
    pub lease_seconds: u32,
    /// The local address host sockets bind to.
    pub bind: Ipv4Addr,
    /// UDP ports carried to the host.
    pub udp: Vec<Forward>,
    /// TCP ports carried to the host.
    pub tcp: Vec<Forward>,
}

impl Default for NetConfig {
    /// QEMU's user network: 10.0.2.0/24, gateway .2, DNS .3, the board .15; NTP
    /// at .4; host sockets from 127.0.0.1; nothing forwarded.
    fn default() -> Self {
        NetConfig {
            gateway: Ipv4Addr::new(10, 0, 2, 2),
            gateway_mac: [0x52, 0x55, 0x0A, 0x00, 0x02, 0x02],
            dns: Ipv4Addr::new(10, 0, 2, 3),
            ntp: Ipv4Addr::new(10, 0, 2, 4),
            board: Ipv4Addr::new(10, 0, 2, 15),
            lease_seconds: 86_400,
            bind: Ipv4Addr::LOCALHOST,
            udp: Vec::new(),
            tcp: Vec::new(),
        }
    }
}

impl NetConfig {
    /// Also carries UDP to `board_port` to `host`.
    pub fn forward_udp(mut self, board_port: u16, host: SocketAddr) -> NetConfig {
        self.udp.push(Forward { board_port, host });
        self
    }

    /// Also carries TCP to `board_port` to `host`.
    pub fn forward_tcp(mut self, board_port: u16, host: SocketAddr) -> NetConfig {
        self.tcp.push(Forward { board_port, host });
        self
    }

    /// Host sockets bind to `addr` (a lab's per-board loopback address).
    pub fn bind_to(mut self, addr: Ipv4Addr) -> NetConfig {
        self.bind = addr;
        self
    }
}

/// The frames between the board and smoltcp.
#[derive(Debug, Default)]
struct Frames {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push(frame);
        r
    }
}

impl Device for Frames {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// One UDP conversation of the board's: a host socket of its own, so replies
/// find their way back.
struct UdpFlow {
    board: IpEndpoint,
    /// The address the board sent to (replies come from it).
    local: IpAddress,
    board_port: u16,
    host: UdpSocket,
}

/// One TCP connection of the board's and its host connection.
struct TcpFlow {
    handle: SocketHandle,
    /// None: the host refused; the board's connection is reset and the flow
    /// goes once the reset is out.
    host: Option<TcpStream>,
    /// Bytes from the board not yet written to the host.
    to_host: Vec<u8>,
    host_closed: bool,
    board_closed: bool,
}

/// Buffer sizes of smoltcp's sockets.
const TCP_BUFFER: usize = 64 * 1024;
const UDP_PACKETS: usize = 16;
const UDP_BUFFER: usize = 16 * 1024;

/// The user-mode network (see the module docs).
pub struct UserNet {
    config: NetConfig,
    iface: Interface,
    frames: Frames,
    sockets: SocketSet<'static>,
    /// Frames the network built itself (DHCP), for the board.
    own: Vec<Vec<u8>>,
    udp_listeners: Vec<(u16, SocketHandle)>,
    udp_flows: Vec<UdpFlow>,
    tcp_listeners: Vec<(Forward, SocketHandle)>,
    tcp_flows: Vec<TcpFlow>,
    /// TCP connections refused because the host's end could not be reached.
    pub refused: u64,
}

impl std::fmt::Debug for UserNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserNet")
            .field("config", &self.config)
            .field("udp_flows", &self.udp_flows.len())
            .field("tcp_flows", &self.tcp_flows.len())
            .finish()
    }
}

fn tcp_listener(port: u16) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    );
    // Listening on a port needs no address: with AnyIP, any address the board
    // dials is ours. A port this listener already has cannot fail.
    let _ = socket.listen(IpListenEndpoint { addr: None, port });
    socket
}

impl UserNet {
    /// The network, no frame exchanged yet.
    pub fn new(config: NetConfig) -> UserNet {
        let mut frames = Frames::default();
        let hw = HardwareAddress::Ethernet(EthernetAddress(config.gateway_mac));
        let mut iface_config = Config::new(hw);
        iface_config.random_seed = 0x5EED;
        let mut iface = Interface::new(iface_config, &mut frames, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // One address: cannot overflow the interface's list.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(config.gateway), 24));
        });
        // Every address is routed through ourselves: AnyIP then takes packets
        // to any of them.
        let _ = iface.routes_mut().add_default_ipv4_route(config.gateway);
        iface.set_any_ip(true);
        let mut sockets = SocketSet::new(Vec::new());
        let udp_listeners = config
            .udp
            .iter()
            .map(|f| {
                let mut socket = udp::Socket::new(
                    udp::PacketBuffer::new(
                        vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                        vec![0; UDP_BUFFER],
                    ),
                    udp::PacketBuffer::new(
                        vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                        vec![0; UDP_BUFFER],
                    ),
                );
                let _ = socket.bind(IpListenEndpoint {
                    addr: None,
                    port: f.board_port,
                });
                (f.board_port, sockets.add(socket))
            })
            .collect();
        let tcp_listeners = config
            .tcp
            .iter()
            .map(|f| (*f, sockets.add(tcp_listener(f.board_port))))
            .collect();
        UserNet {
            config,
            iface,
            frames,
            sockets,
            own: Vec::new(),
            udp_listeners,
            udp_flows: Vec::new(),
            tcp_listeners,
            tcp_flows: Vec::new(),
            refused: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// TCP connections open now.
    pub fn tcp_connections(&self) -> usize {
        self.tcp_flows.len()
    }

    /// A frame from the board.
    pub fn frame_from_board(&mut self, frame: &[u8]) {
        if let Some(reply) = dhcp::reply(&self.config, frame) {
            self.own.push(reply);
            return;
        }
        if self.is_arp_about_the_board(frame) {
            // The board probing or announcing its own address: nobody else has it.
            return;
        }
        self.frames.rx.push_back(frame.to_vec());
    }

    /// An ARP request whose target is the board's own address (AnyIP would
    /// answer it, and lwIP would take that for an address conflict).
    fn is_arp_about_the_board(&self, frame: &[u8]) -> bool {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return false;
        };
        if eth.ethertype() != EthernetProtocol::Arp {
            return false;
        }
        let Ok(packet) = ArpPacket::new_checked(eth.payload()) else {
            return false;
        };
        matches!(
            ArpRepr::parse(&packet),
            Ok(ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                target_protocol_addr,
                ..
            }) if target_protocol_addr == self.config.board
        )
    }

    /// Runs the network at `now` (the board's time): frames in, host sockets
    /// read and written, frames out. Returns the frames for the board.
    pub fn poll(&mut self, now: Instant) -> Result<Vec<Vec<u8>>, NetError> {
        self.iface.poll(now, &mut self.frames, &mut self.sockets);
        self.udp_from_board()?;
        self.udp_from_host();
        self.tcp_accept()?;
        self.tcp_move();
        self.iface.poll(now, &mut self.frames, &mut self.sockets);
        let mut out = std::mem::take(&mut self.own);
        out.append(&mut self.frames.tx);
        Ok(out)
    }

    /// Frames out of `machine` into the network, the network run at the
    /// machine's time, frames for the board into `machine`.
    pub fn exchange(&mut self, machine: &mut Machine) -> Result<(), NetError> {
        for frame in machine.take_frames_out() {
            self.frame_from_board(&frame);
        }
        let micros = machine.board.now / (CPU_HZ / 1_000_000);
        let now = Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX));
        for frame in self.poll(now)? {
            machine.frame_in(&frame);
        }
        Ok(())
    }

    fn bind_udp(&self, host: SocketAddr) -> Result<UdpSocket, NetError> {
        let bind = |source| NetError::Bind {
            addr: self.config.bind,
            source,
        };
        let socket = UdpSocket::bind(SocketAddrV4::new(self.config.bind, 0)).map_err(bind)?;
        socket.connect(host).map_err(bind)?;
        socket.set_nonblocking(true).map_err(bind)?;
        Ok(socket)
    }

    fn udp_from_board(&mut self) -> Result<(), NetError> {
        for i in 0..self.udp_listeners.len() {
            let (port, handle) = self.udp_listeners[i];
            loop {
                let socket = self.sockets.get_mut::<udp::Socket>(handle);
                let Ok((data, meta)) = socket.recv() else {
                    break;
                };
                let data = data.to_vec();
                let local = meta
                    .local_address
                    .unwrap_or(IpAddress::Ipv4(self.config.gateway));
                let existing = self.udp_flows.iter().position(|f| {
                    f.board == meta.endpoint && f.local == local && f.board_port == port
                });
                let flow = match existing {
                    Some(at) => &self.udp_flows[at],
                    None => {
                        let Some(host) = self.config.udp.iter().find(|f| f.board_port == port)
                        else {
                            continue;
                        };
                        let host = self.bind_udp(host.host)?;
                        self.udp_flows.push(UdpFlow {
                            board: meta.endpoint,
                            local,
                            board_port: port,
                            host,
                        });
                        &self.udp_flows[self.udp_flows.len() - 1]
                    }
                };
                // A datagram the host refuses is lost, as on any network.
                let _ = flow.host.send(&data);
            }
        }
        Ok(())
    }

    fn udp_from_host(&mut self) {
        let mut buf = vec![0u8; 65_536];
        for flow in &self.udp_flows {
            let Some(&(_, handle)) = self
                .udp_listeners
                .iter()
                .find(|(port, _)| *port == flow.board_port)
            else {
                continue;
            };
            while let Ok(n) = flow.host.recv(&mut buf) {
                let data = &mut buf[..n];
                if flow.board_port == 53 {
                    dns::loopback_answers_to(data, self.config.gateway);
                }
                let meta = udp::UdpMetadata {
                    endpoint: flow.board,
                    local_address: Some(flow.local),
                    meta: Default::default(),
                };
                let socket = self.sockets.get_mut::<udp::Socket>(handle);
                // A full buffer drops the datagram, as a congested link would.
                let _ = socket.send_slice(data, meta);
            }
        }
    }

    /// A listener that left LISTEN has a connection: it becomes a flow with a
    /// host connection of its own (or is reset when the host refuses), and a new
    /// listener takes its place.
    fn tcp_accept(&mut self) -> Result<(), NetError> {
        for i in 0..self.tcp_listeners.len() {
            let (forward, handle) = self.tcp_listeners[i];
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if socket.state() == tcp::State::Listen {
                continue;
            }
            self.tcp_listeners[i].1 = self.sockets.add(tcp_listener(forward.board_port));
            let host = self.connect_host(forward.host)?;
            if host.is_none() {
                self.refused += 1;
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
            }
            self.tcp_flows.push(TcpFlow {
                handle,
                host_closed: host.is_none(),
                board_closed: host.is_none(),
                host,
                to_host: Vec::new(),
            });
        }
        Ok(())
    }

    /// A TCP connection to `host` from the board's local address; None when
    /// the host refuses it.
    fn connect_host(&self, host: SocketAddr) -> Result<Option<TcpStream>, NetError> {
        use socket2::{Domain, Socket, Type};
        let bind = |source| NetError::Bind {
            addr: self.config.bind,
            source,
        };
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(bind)?;
        socket
            .bind(&SocketAddr::V4(SocketAddrV4::new(self.config.bind, 0)).into())
            .map_err(bind)?;
        if socket
            .connect_timeout(&host.into(), Duration::from_secs(2))
            .is_err()
        {
            return Ok(None);
        }
        let stream: TcpStream = socket.into();
        stream.set_nonblocking(true).map_err(bind)?;
        let _ = stream.set_nodelay(true);
        Ok(Some(stream))
    }

    fn tcp_move(&mut self) {
        let mut buf = vec![0u8; TCP_BUFFER];
        for flow in &mut self.tcp_flows {
            let socket = self.sockets.get_mut::<tcp::Socket>(flow.handle);
            let Some(host) = flow.host.as_mut() else {
                continue;
            };
            // Board -> host.
            while socket.can_recv() {
                let taken = socket.recv(|data| (data.len(), data.to_vec()));
                match taken {
                    Ok(data) if !data.is_empty() => flow.to_host.extend_from_slice(&data),
                    _ => break,
                }
            }
            while !flow.to_host.is_empty() && !flow.host_closed {
                match host.write(&flow.to_host) {
                    Ok(0) => flow.host_closed = true,
                    Ok(n) => {
                        flow.to_host.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        flow.host_closed = true;
                        socket.abort();
                    }
                }
            }
            // The board sent its FIN (may_recv is also false before the
            // handshake is done, which is no close).
            let board_fin = matches!(
                socket.state(),
                tcp::State::CloseWait
                    | tcp::State::LastAck
                    | tcp::State::Closing
                    | tcp::State::TimeWait
            );
            if board_fin && !flow.board_closed && flow.to_host.is_empty() {
                flow.board_closed = true;
                let _ = host.shutdown(Shutdown::Write);
            }
            // Host -> board.
            while !flow.host_closed && socket.can_send() {
                let room = socket.send_capacity() - socket.send_queue();
                match host.read(&mut buf[..room.min(TCP_BUFFER)]) {
                    Ok(0) => {
                        flow.host_closed = true;
                        socket.close();
                    }
                    Ok(n) => {
                        let _ = socket.send_slice(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        flow.host_closed = true;
                        socket.abort();
                    }
                }
            }
        }
        let sockets = &mut self.sockets;
        self.tcp_flows.retain(|flow| {
            let state = sockets.get::<tcp::Socket>(flow.handle).state();
            let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(flow.handle);
            }
            !done
        });
    }
}
