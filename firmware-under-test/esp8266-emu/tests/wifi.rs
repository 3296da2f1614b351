//! Wi-Fi at the lwIP2 glue: the station joins the machine's access point when the
//! sketch is provisioned with its credentials, and the image's own lwIP starts
//! DHCP: its frames come out of `glue2esp_linkoutput`.

mod common;

use common::{reference_machine_with, run_until};
use esp8266_emu::{AccessPoint, BoardConfig, Machine};
use hil_contract::provision;

const SSID: &str = "emulated-lab";
const PASSPHRASE: &str = "lab-passphrase";

fn lab_board() -> BoardConfig {
    BoardConfig {
        access_point: Some(AccessPoint {
            ssid: SSID.into(),
            passphrase: PASSPHRASE.into(),
        }),
        ..BoardConfig::default()
    }
}

/// Boots to `[prov] ready` and provisions `ssid`/`password`.
fn provisioned(config: &BoardConfig, ssid: &str, password: &str) -> Machine {
    let mut m = reference_machine_with(config);
    m.reset().expect("the ROM finds the image");
    run_until(&mut m, "[prov] ready", 1.0);
    let mut settings = provision::compiled_in();
    settings.wifi.ssid = ssid.into();
    settings.wifi.password = password.into();
    m.uart0_receive(format!("{}\n", provision::line(&settings)).as_bytes());
    let out = run_until(&mut m, "[wifi] connecting", 2.5);
    assert!(
        out.contains(&format!("[wifi] connecting ssid={ssid}")),
        "{out}"
    );
    m
}

/// What a DHCP client's frame says, from an Ethernet II frame.
#[derive(Debug, PartialEq, Eq)]
struct Dhcp {
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    udp_ports: (u16, u16),
    op: u8,
    chaddr: [u8; 6],
    message_type: Option<u8>,
}

fn parse_dhcp(frame: &[u8]) -> Option<Dhcp> {
    let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    if frame.len() < 14 + 20 + 8 + 240 || be16(12) != 0x0800 {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0xF) * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let udp = 14 + ihl;
    let bootp = udp + 8;
    let options = bootp + 236;
    if frame[options..options + 4] != [99, 130, 83, 99] {
        return None;
    }
    let mut message_type = None;
    let mut at = options + 4;
    while at + 1 < frame.len() && frame[at] != 255 {
        if frame[at] == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(frame[at + 1]);
        if frame[at] == 53 {
            message_type = frame.get(at + 2).copied();
        }
        at += 2 + len;
    }
    Some(Dhcp {
        eth_dst: frame[0..6].try_into().ok()?,
        eth_src: frame[6..12].try_into().ok()?,
        udp_ports: (be16(udp), be16(udp + 2)),
        op: frame[bootp],
        chaddr: frame[bootp + 28..bootp + 34].try_into().ok()?,
        message_type,
    })
}

#[test]
fn with_the_access_points_credentials_the_image_asks_dhcp_for_an_address() {
    let config = lab_board();
    let mut m = provisioned(&config, SSID, PASSPHRASE);
    let mut frames = m.take_frames_out();
    while frames.is_empty() && m.seconds() < 4.0 {
        m.run(800_000).expect("runs");
        frames.extend(m.take_frames_out());
    }
    let discover = frames
        .iter()
        .find_map(|f| parse_dhcp(f))
        .unwrap_or_else(|| panic!("no DHCP frame among {} frames", frames.len()));
    assert_eq!(
        discover,
        Dhcp {
            eth_dst: [0xFF; 6],
            eth_src: config.mac,
            udp_ports: (68, 67),
            op: 1,
            chaddr: config.mac,
            message_type: Some(1),
        }
    );
}

#[test]
fn a_wrong_passphrase_fails_the_join_and_sends_nothing() {
    let mut m = provisioned(&lab_board(), SSID, "not-the-passphrase");
    let out = run_until(&mut m, "[wifi] failed", 5.0);
    assert!(out.contains("[wifi] failed"), "{out}");
    assert!(m.take_frames_out().is_empty());
    assert!(m.wifi.joins >= 1);
}
