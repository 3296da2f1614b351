//! The user-mode network: the image's own lwIP gets its address from the
//! network's DHCP server, and its DNS, NTP and TCP reach services on the host's
//! loopback from the board's own local address.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{reference_machine_with, run_until};
use esp8266_emu::net::{NetConfig, UserNet};
use esp8266_emu::{AccessPoint, BoardConfig, Machine};
use hil_contract::provision::{self, Settings};

const SSID: &str = "emulated-lab";
const PASSPHRASE: &str = "lab-passphrase";

fn lab_board() -> BoardConfig {
    BoardConfig {
        access_point: Some(AccessPoint::new(SSID, PASSPHRASE)),
        ..BoardConfig::default()
    }
}

/// The lab's settings: its access point, DNS and NTP from DHCP, the broker by
/// name.
fn settings(broker: &str) -> Settings {
    let mut s = provision::compiled_in();
    s.wifi.ssid = SSID.into();
    s.wifi.password = PASSPHRASE.into();
    s.broker.host = broker.into();
    s.dns = None;
    s.ntp = None;
    s
}

/// Boots, provisions at `[prov] ready`, then runs with the network until
/// `needle` is on UART0 or `seconds` of emulated time pass.
fn run_with_network(
    m: &mut Machine,
    net: &mut UserNet,
    settings: &Settings,
    needle: &str,
    seconds: f64,
) -> String {
    m.reset().expect("the ROM finds the image");
    let mut out = run_until(m, "[prov] ready", 1.0);
    m.uart0_receive(format!("{}\n", provision::line(settings)).as_bytes());
    while m.seconds() < seconds && !out.contains(needle) {
        m.run(800_000).expect("runs");
        net.exchange(m).expect("the network runs");
        out.extend(m.take_uart0().iter().map(|b| char::from(b.byte)));
    }
    out
}

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

/// A DNS server on loopback that answers every A question with 127.0.0.1 and
/// reports who asked and for what.
fn dns_responder() -> (SocketAddr, mpsc::Receiver<(SocketAddr, String)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let addr = socket.local_addr().expect("bound");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let query = &buf[..n];
            // The question: labels from byte 12 to the root label, then type and class.
            let mut at = 12;
            let mut name = Vec::new();
            while at < n && query[at] != 0 {
                let len = usize::from(query[at]);
                name.push(String::from_utf8_lossy(&query[at + 1..at + 1 + len]).into_owned());
                at += 1 + len;
            }
            let question_end = at + 5;
            let mut answer = query[..question_end].to_vec();
            answer[2] = 0x81; // response, recursion desired
            answer[3] = 0x80; // recursion available, no error
            answer[6..8].copy_from_slice(&1u16.to_be_bytes());
            answer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            // Reported before the answer goes, so the test never waits for it.
            if tx.send((peer, name.join("."))).is_err() {
                break;
            }
            let _ = socket.send_to(&answer, peer);
        }
    });
    (addr, rx)
}

/// An NTP server on loopback that answers with the host's clock.
fn ntp_responder() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binds");
    let addr = socket.local_addr().expect("bound");
    thread::spawn(move || {
        let mut buf = [0u8; 128];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if n < 48 {
                continue;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs();
            let seconds = (now + 2_208_988_800) as u32; // NTP era 0
            let mut reply = [0u8; 48];
            reply[0] = 0x24; // no leap warning, version 4, mode 4 (server)
            reply[1] = 1; // stratum 1
            reply[24..32].copy_from_slice(&buf[40..48]); // originate = their transmit
            for at in [16, 32, 40] {
                reply[at..at + 4].copy_from_slice(&seconds.to_be_bytes());
            }
            let _ = socket.send_to(&reply, peer);
        }
    });
    addr
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
