//! A lab on loopback for the network tests: the access point, the settings a
//! lab provisions, DNS and NTP responders, and a run loop with the user-mode
//! network.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use esp8266_emu::net::UserNet;
use esp8266_emu::{AccessPoint, BoardConfig, Machine};
use hil_contract::provision::{self, Settings};

use super::run_until;

pub const SSID: &str = "emulated-lab";
pub const PASSPHRASE: &str = "lab-passphrase";

pub fn lab_board() -> BoardConfig {
    BoardConfig {
        access_point: Some(AccessPoint::new(SSID, PASSPHRASE)),
        ..BoardConfig::default()
    }
}

/// The lab's settings: its access point, DNS and NTP from DHCP, the broker by
/// name.
pub fn settings(broker: &str) -> Settings {
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
pub fn run_with_network(
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

/// A DNS server on loopback that answers every A question with 127.0.0.1 and
/// reports who asked and for what.
pub fn dns_responder() -> (SocketAddr, mpsc::Receiver<(SocketAddr, String)>) {
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
            // Reported before the answer goes, so the test never waits for it
            // (a test that does not listen still gets answers).
            let _ = tx.send((peer, name.join(".")));
            let _ = socket.send_to(&answer, peer);
        }
    });
    (addr, rx)
}

/// An NTP server on loopback that answers with the host's clock.
pub fn ntp_responder() -> SocketAddr {
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
