//! The user-mode network: the image's own lwIP gets its address from the
//! network's DHCP server, and its DNS, NTP and TCP reach services on the host's
//! loopback from the board's own local address.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::lab::{dns_responder, lab_board, ntp_responder, run_with_network, settings};
use common::reference_machine_with;
use esp8266_emu::net::{NetConfig, UserNet};

#[test]
fn the_networks_dhcp_server_connects_the_sketch() {
    let mut m = reference_machine_with(&lab_board());
    let mut net = UserNet::new(NetConfig::default());
    let out = run_with_network(
        &mut m,
        &mut net,
        &settings("broker.lab"),
        "[wifi] connected",
        8.0,
    );
    assert!(out.contains("[wifi] connected ip=10.0.2.15"), "{out}");
}

/// What the board's TLS connection brought to the broker's port: the peer's
/// address and the first bytes of the ClientHello.
fn tls_listener() -> (SocketAddr, mpsc::Receiver<(SocketAddr, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("bound");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Ok((mut stream, peer)) = listener.accept() {
            let mut hello = [0u8; 5];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            if stream.read_exact(&mut hello).is_ok() {
                let _ = tx.send((peer, hello.to_vec()));
            }
            // Hold the connection until the test is over.
            thread::sleep(Duration::from_secs(60));
        }
    });
    (addr, rx)
}

/// The board at 127.0.1.7, as the lab numbers virtual board 7: its NTP and DNS
/// go to the test's responders, the broker's name resolves (the loopback
/// answer rewritten to the gateway), and the TLS connection to port 8883
/// reaches the test's listener from 127.0.1.7 with a TLS handshake record.
#[test]
fn ntp_dns_and_the_brokers_tcp_reach_loopback_from_the_boards_address() {
    let board_addr = Ipv4Addr::new(127, 0, 1, 7);
    let (dns, questions) = dns_responder();
    let ntp = ntp_responder();
    let (broker, hellos) = tls_listener();
    let config = NetConfig::default()
        .bind_to(board_addr)
        .forward_udp(53, dns)
        .forward_udp(123, ntp)
        .forward_tcp(8883, broker);
    let mut m = reference_machine_with(&lab_board());
    let mut net = UserNet::new(config);
    let out = run_with_network(
        &mut m,
        &mut net,
        &settings("broker.lab"),
        "[tls] connecting",
        12.0,
    );
    assert!(out.contains("[wifi] connected ip=10.0.2.15"), "{out}");
    assert!(out.contains("[ntp] synced epoch="), "{out}");
    assert!(
        out.contains("[dns] resolved host=broker.lab ip=10.0.2.2"),
        "{out}"
    );
    assert!(
        out.contains("[tls] connecting host=broker.lab port=8883"),
        "{out}"
    );
    let (asker, name) = questions
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("no DNS question reached the host ({e}): {out}"));
    assert_eq!(name, "broker.lab");
    assert_eq!(asker.ip(), board_addr, "DNS from the board's address");
    // Let the ClientHello cross.
    let deadline = m.seconds() + 3.0;
    let mut hello = None;
    while m.seconds() < deadline && hello.is_none() {
        m.run(800_000).expect("runs");
        net.exchange(&mut m).expect("the network runs");
        hello = hellos.try_recv().ok();
    }
    let more: String = m.take_uart0().iter().map(|b| char::from(b.byte)).collect();
    let (peer, record) = hello.unwrap_or_else(|| {
        panic!(
            "the board's TLS connection did not reach the listener ({net:?}, refused {}): {out}{more}",
            net.refused
        )
    });
    assert_eq!(peer.ip(), board_addr, "TCP from the board's address");
    assert_eq!(record[0], 0x16, "a TLS handshake record");
    assert_eq!(record[1], 3, "TLS 1.x");
}
