//! Wi-Fi at the lwIP2 glue: the station joins the machine's access point when the
//! sketch is provisioned with its credentials, and the image's own lwIP starts
//! DHCP: its frames come out of `glue2esp_linkoutput`.

mod common;

use common::{reference_machine_with, run_until};
use esp8266_emu::{AccessPoint, BoardConfig, Machine, WatchedCall};
use hil_contract::provision;

const SSID: &str = "emulated-lab";
const PASSPHRASE: &str = "lab-passphrase";

fn lab_board() -> BoardConfig {
    BoardConfig {
        access_point: Some(AccessPoint::new(SSID, PASSPHRASE)),
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
    xid: u32,
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
        xid: u32::from_be_bytes(frame[bootp + 4..bootp + 8].try_into().ok()?),
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
            xid: discover.xid,
        }
    );
}

const AP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER: [u8; 4] = [192, 168, 4, 1];
const CLIENT: [u8; 4] = [192, 168, 4, 2];

/// A DHCP server's reply (`message_type` 2 OFFER or 5 ACK) to `client` for `xid`.
fn dhcp_reply(message_type: u8, xid: u32, client: [u8; 6]) -> Vec<u8> {
    let mut bootp = vec![0u8; 236];
    bootp[0] = 2; // BOOTREPLY
    bootp[1] = 1; // Ethernet
    bootp[2] = 6;
    bootp[4..8].copy_from_slice(&xid.to_be_bytes());
    bootp[16..20].copy_from_slice(&CLIENT); // yiaddr
    bootp[20..24].copy_from_slice(&SERVER); // siaddr
    bootp[28..34].copy_from_slice(&client);
    bootp.extend_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, message_type]);
    bootp.extend_from_slice(&[54, 4]);
    bootp.extend_from_slice(&SERVER);
    bootp.extend_from_slice(&[51, 4, 0, 0, 0x0E, 0x10]); // lease: an hour
    bootp.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
    bootp.extend_from_slice(&[3, 4]);
    bootp.extend_from_slice(&SERVER);
    bootp.extend_from_slice(&[6, 4]);
    bootp.extend_from_slice(&SERVER);
    bootp.push(255);
    let udp_len = 8 + bootp.len();
    let mut udp = Vec::new();
    udp.extend_from_slice(&67u16.to_be_bytes());
    udp.extend_from_slice(&68u16.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // no UDP checksum
    udp.extend_from_slice(&bootp);
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&SERVER);
    ip.extend_from_slice(&[255; 4]);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xFFFF) + (sum >> 16);
    let sum = !((sum & 0xFFFF) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::new();
    frame.extend_from_slice(&[0xFF; 6]);
    frame.extend_from_slice(&AP_MAC);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&udp);
    frame
}

/// Runs until lwIP sends a DHCP message of `message_type`.
fn wait_for_dhcp(m: &mut Machine, message_type: u8, until: f64) -> Dhcp {
    loop {
        for f in m.take_frames_out() {
            if let Some(d) = parse_dhcp(&f).filter(|d| d.message_type == Some(message_type)) {
                return d;
            }
        }
        assert!(
            m.seconds() < until,
            "no DHCP message {message_type} by {until} s"
        );
        m.run(800_000).expect("runs");
    }
}

/// The whole exchange by hand: DISCOVER, OFFER, REQUEST, ACK; the image's lwIP
/// binds the address, the SDK's got-IP path sets the station status and the
/// sketch reports it.
#[test]
fn a_dhcp_offer_and_ack_fed_back_connect_the_sketch() {
    let config = lab_board();
    let mut m = provisioned(&config, SSID, PASSPHRASE);
    let discover = wait_for_dhcp(&mut m, 1, 4.0);
    m.frame_in(&dhcp_reply(2, discover.xid, config.mac));
    let request = wait_for_dhcp(&mut m, 3, 6.0);
    assert_eq!(request.xid, discover.xid);
    m.frame_in(&dhcp_reply(5, request.xid, config.mac));
    let out = run_until(&mut m, "[wifi] connected", 12.0);
    assert!(out.contains("[wifi] connected ip=192.168.4.2"), "{out}");
}

/// Regression: the fixture image's BearSSL, built by gcc 12 with strict aliasing,
/// lost the store of the T0 return-stack pointer in `br_pem_decoder_init`; the
/// sketch's `configureTls()` (right after `[wifi] connected`) then crashed with
/// `Exception (29)` in `br_pem_decoder_init_main`. With the rebuilt image the
/// sketch parses its trust anchor and goes on to the clock.
#[test]
fn after_connecting_the_sketch_parses_its_trust_anchor_and_goes_on() {
    let config = lab_board();
    let mut m = provisioned(&config, SSID, PASSPHRASE);
    let discover = wait_for_dhcp(&mut m, 1, 4.0);
    m.frame_in(&dhcp_reply(2, discover.xid, config.mac));
    let request = wait_for_dhcp(&mut m, 3, 6.0);
    m.frame_in(&dhcp_reply(5, request.xid, config.mac));
    run_until(&mut m, "[wifi] connected", 12.0);
    // No NTP server answers: the sketch gives up on the clock after 2 s.
    let out = run_until(&mut m, "[ntp] failed", 16.0);
    assert!(out.contains("[ntp] failed"), "{out}");
    assert!(!out.contains("Exception"), "{out}");
    assert_eq!(m.restarts, 0);
}

/// The core's Wi-Fi event dispatcher, which the SDK's event task calls with each
/// `System_Event_t` and which runs the sketch's `onStationMode*` handlers.
const CORE_EVENT_CALLBACK: &str = "_ZN23ESP8266WiFiGenericClass14_eventCallbackEPv";

/// Boots with the core's event dispatcher watched (44 bytes: a `System_Event_t`).
fn provisioned_and_watched(config: &BoardConfig, ssid: &str, password: &str) -> Machine {
    let mut m = reference_machine_with(config);
    let dispatcher = m
        .symbols
        .addr_of(CORE_EVENT_CALLBACK)
        .expect("the core's event dispatcher is in the ELF");
    m.watch(dispatcher, 44);
    m.reset().expect("the ROM finds the image");
    run_until(&mut m, "[prov] ready", 1.0);
    let mut settings = provision::compiled_in();
    settings.wifi.ssid = ssid.into();
    settings.wifi.password = password.into();
    m.uart0_receive(format!("{}\n", provision::line(&settings)).as_bytes());
    m
}

/// The SDK's EVENT_MODE_CHANGE, which it posts itself when the sketch's
/// `WiFi.mode(WIFI_STA)` switches the station on.
const EVENT_MODE_CHANGE: u32 = 8;

fn event_number(call: &WatchedCall) -> u32 {
    let e = &call.at_arg0;
    u32::from_le_bytes([e[0], e[1], e[2], e[3]])
}

/// (event number, SSID, BSSID, channel or reason) of each station event the core
/// got (the mode change left out).
fn events(m: &Machine) -> Vec<(u32, Vec<u8>, [u8; 6], u8)> {
    m.watched
        .iter()
        .filter(|call| event_number(call) != EVENT_MODE_CHANGE)
        .map(|WatchedCall { at_arg0: e, .. }| {
            let ssid_len = usize::from(e[36]).min(32);
            (
                u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                e[4..4 + ssid_len].to_vec(),
                e[37..43].try_into().expect("six bytes"),
                e[43],
            )
        })
        .collect()
}

/// The SDK's EVENT_STAMODE_CONNECTED reaches the core (the sketch's
/// `onStationModeConnected` would see the SSID, BSSID and channel) before DHCP,
/// then the SDK's own EVENT_STAMODE_GOT_IP once lwIP has the address.
#[test]
fn the_core_hears_connected_then_got_ip() {
    let config = lab_board();
    let mut m = provisioned_and_watched(&config, SSID, PASSPHRASE);
    let discover = wait_for_dhcp(&mut m, 1, 4.0);
    assert_eq!(
        events(&m),
        [(0, SSID.as_bytes().to_vec(), AccessPoint::DEFAULT_BSSID, 1)],
        "EVENT_STAMODE_CONNECTED on channel 1, before any address"
    );
    m.frame_in(&dhcp_reply(2, discover.xid, config.mac));
    let request = wait_for_dhcp(&mut m, 3, 6.0);
    m.frame_in(&dhcp_reply(5, request.xid, config.mac));
    run_until(&mut m, "[wifi] connected", 12.0);
    let numbers: Vec<u32> = m.watched.iter().map(event_number).collect();
    assert_eq!(
        numbers,
        [EVENT_MODE_CHANGE, 0, 3],
        "the SDK's mode change, CONNECTED, then the SDK's GOT_IP"
    );
}

/// A wrong passphrase: the SDK's station status (WRONG_PASSWORD, which the
/// core's `WiFi.status()` maps to WL_WRONG_PASSWORD, so `waitForConnectResult`
/// returns at once instead of waiting out its 15 s) and EVENT_STAMODE_DISCONNECTED
/// with REASON_4WAY_HANDSHAKE_TIMEOUT (15) for `onStationModeDisconnected`.
#[test]
fn a_wrong_passphrase_fails_the_join_with_the_sdks_event_and_sends_nothing() {
    let mut m = provisioned_and_watched(&lab_board(), SSID, "not-the-passphrase");
    let out = run_until(&mut m, "[wifi] failed", 5.0);
    assert!(out.contains("[wifi] connecting"), "{out}");
    assert!(out.contains("[wifi] failed"), "{out}");
    // PROV is taken at about 0.5 s; the join's timeout would be 15 s later.
    assert!(
        m.seconds() < 1.0,
        "WiFi.status() saw the failure at once ({} s)",
        m.seconds()
    );
    assert_eq!(
        events(&m),
        [(1, SSID.as_bytes().to_vec(), AccessPoint::DEFAULT_BSSID, 15)]
    );
    assert!(m.take_frames_out().is_empty());
    assert!(m.wifi.joins >= 1);
}

/// An SSID nobody has: EVENT_STAMODE_DISCONNECTED with REASON_NO_AP_FOUND (201)
/// and no BSSID.
#[test]
fn an_unknown_ssid_gives_the_core_no_ap_found() {
    let mut m = provisioned_and_watched(&lab_board(), "elsewhere", PASSPHRASE);
    run_until(&mut m, "[wifi] failed", 5.0);
    assert_eq!(events(&m), [(1, b"elsewhere".to_vec(), [0; 6], 201)]);
}
