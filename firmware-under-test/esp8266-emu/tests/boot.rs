//! The reference image (fixtures/firmware) from reset on the emulated ESP8266.

mod common;

use common::{line_at, reference_machine, run_until};
use esp8266_emu::{BoardConfig, Machine, Symbols};

/// From reset to the sketch's `setup()`: the ROM's banner and its lines for eboot
/// (at 74880 baud), eboot's own (`v...`, `~ld`), the SDK's banner, then the
/// sketch's first two lines at 115200. All of it happens in the first 0.2 s of
/// emulated time (about 150,000 instructions), so the debug build runs it quickly.
#[test]
fn boots_the_reference_image() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    let out = run_until(&mut m, "[prov] ready", 1.0);
    assert!(
        out.starts_with("\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n"),
        "{out}"
    );
    let rom_lines = "load 0x4010f000, len 3424, room 16 \r\ntail 0\r\nchksum 0x2e\r\n\
                     load 0x3fff20b8, len 40, room 8 \r\ntail 0\r\nchksum 0x2b\r\ncsum 0x2b\r\n";
    assert!(out.contains(rom_lines), "{out}");
    assert!(out.contains("~ld\r\n"), "eboot loads the app: {out}");
    assert!(out.contains("SDK ver: 2.2.2-dev"), "the SDK starts: {out}");
    assert!(
        out.contains("[boot] fw=hil-reference version=1.0.0 reset=External-System\r\n"),
        "{out}"
    );
    assert!(out.contains("[prov] ready window_ms=1500\r\n"), "{out}");
    assert!(
        m.seconds() < 0.5,
        "setup() prints within 0.5 s, not {}",
        m.seconds()
    );
}

/// The ROM prints at 74880 baud, the sketch at 115200 (the SDK's own banner at
/// 74880 too, once the PLL runs at 80 MHz).
#[test]
fn rom_and_sketch_lines_carry_their_baud_rates() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    let first = m.take_uart0();
    assert!(first.iter().all(|b| b.baud == 74_880));
    let mut rest = Vec::new();
    let boot_at = loop {
        assert!(m.seconds() < 1.0, "no [boot] line within a second");
        m.run(800_000).expect("runs");
        rest.extend(m.take_uart0());
        let bytes: Vec<u8> = rest.iter().map(|b| b.byte).collect();
        if let Some(i) = bytes.windows(6).position(|w| w == b"[boot]") {
            break i;
        }
    };
    let sdk = rest
        .iter()
        .position(|b| b.byte == b'S')
        .expect("the SDK's banner");
    assert!(
        (74_800..75_000).contains(&rest[sdk].baud),
        "{}",
        rest[sdk].baud
    );
    let baud = rest[boot_at].baud;
    assert!((115_000..115_400).contains(&baud), "{baud}");
}

/// With nothing typed at `[prov] ready` the sketch waits out its 1500 ms window
/// (in `delay(1)` steps: the SDK's software timers on FRC2 wake the idle CPU) and
/// goes on with its compiled-in settings.
#[test]
fn the_provisioning_window_closes_and_the_sketch_joins_wifi() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    let mut sent = Vec::new();
    while line_at(&sent, "[wifi] connecting ssid=").is_none() {
        assert!(m.seconds() < 3.0, "no [wifi] line within 3 s");
        m.run(800_000).unwrap_or_else(|e| panic!("stopped: {e}"));
        sent.extend(m.take_uart0());
    }
    let ready = line_at(&sent, "[prov] ready").expect("[prov] ready");
    let wifi =
        line_at(&sent, "[wifi] connecting ssid=factory-ap\r\n").expect("the compiled-in SSID");
    assert!(
        (1.5..1.7).contains(&(wifi - ready)),
        "the window is 1500 ms: ready at {ready:.3} s, wifi at {wifi:.3} s"
    );
}

/// Erased flash: the ROM prints `ets_main.c` and stops.
#[test]
fn erased_flash_does_not_boot() {
    let mut m = Machine::new(&[], &BoardConfig::default(), Symbols::empty());
    assert!(m.reset().is_err());
    let text: Vec<u8> = m.take_uart0().iter().map(|b| b.byte).collect();
    assert!(String::from_utf8_lossy(&text).ends_with("ets_main.c \r\n"));
}

/// The board has no access point: the compiled-in network is not found, the
/// sketch says so and tries again after its 2 s pause.
#[test]
fn the_sketch_retries_wifi() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    let out = run_until(&mut m, "[wifi] failed\r\n[wifi] connecting", 6.0);
    assert!(
        out.contains("[wifi] failed\r\n[wifi] connecting ssid=factory-ap"),
        "{out}"
    );
}

/// Longer: five emulated seconds past setup() without a stop (release: `cargo test
/// --release -p esp8266-emu -- --ignored`).
#[test]
#[ignore = "slow in debug builds; run with --release -- --ignored"]
fn runs_five_seconds_without_stopping() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    m.run(5 * esp8266_emu::machine::CPU_HZ).expect("no stop");
    assert!(m.instructions > 1_000_000);
}
