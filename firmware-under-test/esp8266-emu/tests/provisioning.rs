//! Typing at the sketch: the harness's `PROV <base64 JSON>` line goes in on UART0's
//! receive line at 115200 baud, the way `hil` provisions a real board.

mod common;

use common::{reference_machine, run_until};
use hil_contract::provision;

/// The line the harness writes for `ssid`: the compiled-in settings (a real CA
/// included, so the line is a few kilobytes, as in a real run) with other Wi-Fi
/// credentials.
fn prov_line(ssid: &str) -> String {
    let mut settings = provision::compiled_in();
    settings.wifi.ssid = ssid.into();
    settings.wifi.password = "emulated-secret".into();
    format!("{}\r\n", provision::line(&settings))
}

#[test]
fn a_prov_line_typed_at_prov_ready_is_taken() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    let out = run_until(&mut m, "[prov] ready", 1.0);
    assert!(out.contains("[prov] ready"), "{out}");
    let line = prov_line("emulated-lab");
    m.uart0_receive(line.as_bytes());
    let start = m.seconds();
    let out = run_until(&mut m, "[wifi] connecting", start + 1.4);
    assert!(out.contains("[prov] ok\r\n"), "{out}");
    assert!(
        out.contains("[wifi] connecting ssid=emulated-lab\r\n"),
        "the provisioned SSID, not the compiled-in one: {out}"
    );
    // The line takes its time on the wire: ten bits a byte at 115200 baud.
    let wire = line.len() as f64 * 10.0 / 115_200.0;
    assert!(
        m.seconds() - start > wire,
        "answered after {:.3} s, before the {wire:.3} s the line takes",
        m.seconds() - start
    );
}

#[test]
fn a_garbled_line_is_refused_and_the_window_stays_open() {
    let mut m = reference_machine();
    m.reset().expect("the ROM finds the image");
    run_until(&mut m, "[prov] ready", 1.0);
    m.uart0_receive(b"PROV not-base64!\n");
    m.uart0_receive(prov_line("second-try").as_bytes());
    let out = run_until(&mut m, "[wifi] connecting", 2.0);
    assert!(out.contains("[prov] error reason=bad-base64"), "{out}");
    assert!(out.contains("[wifi] connecting ssid=second-try"), "{out}");
}
