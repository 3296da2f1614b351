//! The user-mode network's DHCP server: one board, one address. It answers a
//! DISCOVER with an OFFER and a REQUEST with an ACK for the board's address, with
//! the gateway as router and server, the DNS server (option 6) and the NTP server
//! (option 42) of the private network. The wire formats are smoltcp's.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

use super::NetConfig;

/// The DHCP server's and client's ports.
pub const SERVER_PORT: u16 = 67;
/// The client's port.
pub const CLIENT_PORT: u16 = 68;

/// DHCP option 42: NTP servers.
const OPTION_NTP: u8 = 42;
/// DHCP option 6: DNS servers.
const OPTION_DNS: u8 = 6;

/// The reply to a DHCP client's frame, if `frame` is one the server answers.
pub fn reply(config: &NetConfig, frame: &[u8]) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != SERVER_PORT {
        return None;
    }
    let packet = DhcpPacket::new_checked(udp.payload()).ok()?;
    let request = DhcpRepr::parse(&packet).ok()?;
    let message_type = match request.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => {
            let asked = request.requested_ip.unwrap_or(request.client_ip);
            if asked != config.board {
                DhcpMessageType::Nak
            } else {
                DhcpMessageType::Ack
            }
        }
        _ => return None,
    };
    let dns = config.dns.octets();
    let ntp = config.ntp.octets();
    let options = [
        DhcpOption {
            kind: OPTION_DNS,
            data: &dns,
        },
        DhcpOption {
            kind: OPTION_NTP,
            data: &ntp,
        },
    ];
    let nak = message_type == DhcpMessageType::Nak;
    let answer = DhcpRepr {
        message_type,
        transaction_id: request.transaction_id,
        secs: 0,
        client_hardware_address: request.client_hardware_address,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: if nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            config.board
        },
        server_ip: config.gateway,
        router: (!nak).then_some(config.gateway),
        subnet_mask: (!nak).then_some(Ipv4Addr::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(config.gateway),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: (!nak).then_some(config.lease_seconds),
        renew_duration: None,
        rebind_duration: None,
        additional_options: if nak { &[] } else { &options },
    };
    Some(frame_to_client(
        config,
        request.client_hardware_address,
        &answer,
    ))
}

/// `answer` in UDP 67 -> 68, IPv4 from the gateway to the broadcast address, in
/// an Ethernet frame from the gateway to the client's MAC.
fn frame_to_client(config: &NetConfig, client: EthernetAddress, answer: &DhcpRepr) -> Vec<u8> {
    let dhcp_len = answer.buffer_len();
    let udp = UdpRepr {
        src_port: SERVER_PORT,
        dst_port: CLIENT_PORT,
    };
    let ip = Ipv4Repr {
        src_addr: config.gateway,
        dst_addr: Ipv4Addr::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dhcp_len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(config.gateway_mac),
        dst_addr: client,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut eth_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut eth_frame);
    let mut ip_packet = Ipv4Packet::new_unchecked(eth_frame.payload_mut());
    ip.emit(&mut ip_packet, &caps);
    let mut udp_packet = UdpPacket::new_unchecked(ip_packet.payload_mut());
    udp.emit(
        &mut udp_packet,
        &ip.src_addr.into(),
        &ip.dst_addr.into(),
        dhcp_len,
        |buf| {
            let mut packet = DhcpPacket::new_unchecked(buf);
            // The buffer is exactly buffer_len() long: emit cannot run short.
            let _ = answer.emit(&mut packet);
        },
        &caps,
    );
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's message as lwIP sends it: from 0.0.0.0:68 to the broadcast
    /// address's port 67.
    fn client_frame(message_type: DhcpMessageType, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let mac = EthernetAddress([0x5C, 0xCF, 0x7F, 0, 0, 1]);
        let repr = DhcpRepr {
            message_type,
            transaction_id: 0x1234_5678,
            secs: 0,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: requested,
            client_identifier: Some(mac),
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6, 42]),
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let config = NetConfig {
            gateway: Ipv4Addr::UNSPECIFIED,
            gateway_mac: mac.0,
            ..NetConfig::default()
        };
        let mut frame = frame_to_client(&config, EthernetAddress([0xFF; 6]), &repr);
        // Turn the server's frame around into a client's: ports 68 -> 67.
        let at = 14 + 20;
        frame[at..at + 2].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        frame[at + 2..at + 4].copy_from_slice(&SERVER_PORT.to_be_bytes());
        frame[at + 6..at + 8].fill(0); // no UDP checksum
        frame
    }

    fn parse(frame: &[u8]) -> (DhcpMessageType, Ipv4Addr, Vec<u8>) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
        let packet = DhcpPacket::new_checked(udp.payload()).unwrap();
        let repr = DhcpRepr::parse(&packet).unwrap();
        let options: Vec<u8> = packet
            .options()
            .flat_map(|o| {
                let mut v = vec![o.kind];
                v.extend_from_slice(o.data);
                v
            })
            .collect();
        (repr.message_type, repr.your_ip, options)
    }

    #[test]
    fn discover_gets_an_offer_and_request_an_ack_with_dns_and_ntp() {
        let config = NetConfig::default();
        let offer = reply(&config, &client_frame(DhcpMessageType::Discover, None)).unwrap();
        let (kind, yiaddr, options) = parse(&offer);
        assert_eq!((kind, yiaddr), (DhcpMessageType::Offer, config.board));
        let with = |kind: u8, addr: Ipv4Addr| {
            let mut o = vec![kind];
            o.extend_from_slice(&addr.octets());
            o
        };
        for wanted in [
            with(6, config.dns),
            with(42, config.ntp),
            with(3, config.gateway),
        ] {
            assert!(
                options.windows(wanted.len()).any(|w| w == wanted),
                "{wanted:?} in {options:?}"
            );
        }
        let ack = reply(
            &config,
            &client_frame(DhcpMessageType::Request, Some(config.board)),
        )
        .unwrap();
        assert_eq!(parse(&ack).0, DhcpMessageType::Ack);
        let nak = reply(
            &config,
            &client_frame(DhcpMessageType::Request, Some(Ipv4Addr::new(10, 9, 9, 9))),
        )
        .unwrap();
        assert_eq!(parse(&nak).0, DhcpMessageType::Nak);
    }
}
