//! The committed real ESP8266 build of the reference sketch
//! (fixtures/firmware/, made by firmware-under-test/esp8266/build.sh), checked
//! by tools nobody here wrote and by the harness's own flash path: esptool reads
//! it, `hil flash` writes and verifies it on a virtual board whose ROM then boots
//! its eboot, and the twin's log formats are all among its strings.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use common::{assert_ok, board, esptool, esptool_read_flash, hil_monitor_boot, root};

fn image_path() -> PathBuf {
    root().join("fixtures/firmware/reference-nodemcuv2.bin")
}

fn image() -> Vec<u8> {
    std::fs::read(image_path()).expect("fixtures/firmware/reference-nodemcuv2.bin is committed")
}

/// Where Arduino's elf2bin puts the application: after eboot's 4 KiB sector.
const APP_OFFSET: usize = 0x1000;
/// `__crc_len` and `__crc_val`, the first 8 bytes of irom0 (flash 0x1010):
/// elf2bin stamps them after the image (and its checksum) is made.
const CRC_STAMP: std::ops::Range<usize> = 0x1010..0x1018;

/// The segments of the v1 image at `at`: (load address, data range).
fn segments(image: &[u8], at: usize) -> Vec<(u32, std::ops::Range<usize>)> {
    assert_eq!(image[at], 0xe9, "a v1 image starts with 0xE9");
    let count = usize::from(image[at + 1]);
    let mut pos = at + 8;
    let word = |p: usize| u32::from_le_bytes(image[p..p + 4].try_into().unwrap());
    (0..count)
        .map(|_| {
            let (addr, len) = (word(pos), word(pos + 4) as usize);
            let data = pos + 8..pos + 8 + len;
            pos = data.end;
            (addr, data)
        })
        .collect()
}

/// The ROM's checksum byte position (last byte of the 16-byte-aligned padding).
fn checksum_at(image: &[u8], at: usize) -> usize {
    let end = segments(image, at).last().unwrap().1.end - at;
    at + (end + 16) / 16 * 16 - 1
}

fn xor_checksum(image: &[u8], at: usize) -> u8 {
    segments(image, at)
        .into_iter()
        .flat_map(|(_, data)| image[data].to_vec())
        .fold(0xef, |c, b| c ^ b)
}

/// What `esptool image_info --version 2` says of the image in `file`.
async fn image_info(file: &Path) -> String {
    let file = file.to_str().unwrap();
    assert_ok(&esptool(&["--chip", "esp8266", "image_info", "--version", "2", file]).await)
}

/// The core's crc32 (cores/esp8266/crc32.cpp: MSB first, polynomial
/// 0x04C11DB7, start 0xFFFFFFFF, no final XOR), what `ESP.checkFlashCRC()` runs.
fn core_crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        for bit in (0..8).rev() {
            let top = crc & 0x8000_0000 != 0;
            crc <<= 1;
            if top != (byte >> bit & 1 == 1) {
                crc ^= 0x04c1_1db7;
            }
        }
    }
    crc
}

#[tokio::test(flavor = "multi_thread")]
async fn esptool_reads_both_images_and_the_apps_one_bad_checksum_is_elf2bins_crc_stamp() {
    let image = image();
    assert_eq!(image.len(), 432_208);
    let dir = tempfile::tempdir().unwrap();

    // At 0x0: eboot, which the ROM loads and checks.
    let whole = image_info(&image_path()).await;
    assert!(whole.contains("Image version: 1"), "{whole}");
    assert!(whole.contains("Entry point: 0x4010f480"), "{whole}");
    assert!(whole.contains("Segments: 2"), "{whole}");
    assert!(whole.contains("Checksum: 0x2b (valid)"), "{whole}");

    // At 0x1000: the application, as eboot finds it.
    let app = dir.path().join("app-at-0x1000.bin");
    std::fs::write(&app, &image[APP_OFFSET..]).unwrap();
    let info = image_info(&app).await;
    for fact in [
        "Image version: 1",
        "Entry point: 0x401000c4",
        "Segments: 5",
        "Flash size: 4MB",
        "Flash mode: DIO",
    ] {
        assert!(info.contains(fact), "`{fact}` not in:\n{info}");
    }
    let irom = segments(&image, APP_OFFSET);
    assert_eq!(irom[0].0, 0x4020_1010, "irom0 is the first segment");
    assert_eq!(
        irom[0].1.start, CRC_STAMP.start,
        "and starts with the CRC stamp"
    );

    // esptool says the checksum is invalid, and why is exact: the stored byte is
    // the checksum of the image before the 8-byte stamp was written.
    let line = info
        .lines()
        .find(|l| l.starts_with("Checksum:"))
        .unwrap_or_else(|| panic!("no checksum line in:\n{info}"));
    let stored = image[checksum_at(&image, APP_OFFSET)];
    let calculated = xor_checksum(&image, APP_OFFSET);
    assert_eq!(
        line,
        // esptool prints the stored byte as Python's `{:#02x}` (0x4, 0x2b) and
        // the calculated one as `{:02x}` (0c, ec).
        format!("Checksum: {stored:#x} (invalid - calculated {calculated:02x})")
    );
    let mut unstamped = image.clone();
    unstamped[CRC_STAMP].fill(0);
    assert_eq!(xor_checksum(&unstamped, APP_OFFSET), stored);

    // The stamp itself: the image's length and the core's CRC over the image
    // with the stamp zeroed, which ESP.checkFlashCRC() recomputes on the device.
    let word = |p: usize| u32::from_le_bytes(image[p..p + 4].try_into().unwrap());
    assert_eq!(word(CRC_STAMP.start) as usize, image.len());
    assert_eq!(word(CRC_STAMP.start + 4), core_crc32(&unstamped));
}

#[tokio::test(flavor = "multi_thread")]
async fn hil_flash_writes_and_verifies_it_and_the_virtual_roms_boots_its_eboot() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 41).await;
    let hil = env!("CARGO_BIN_EXE_hil");

    let out = tokio::process::Command::new(hil)
        .args(["flash", "--port", board.url()])
        .arg(image_path())
        .output()
        .await
        .unwrap();
    let said = assert_ok(&out);
    assert!(said.contains("written and verified"), "{said}");

    // esptool reads back what hil wrote, byte for byte.
    let back = dir.path().join("back.bin");
    let image = image();
    let read = esptool_read_flash(board.url(), 0, image.len(), &back).await;
    assert!(read == image, "flash differs from the image");

    // The ROM loads eboot's segments and accepts its checksum, as a NodeMCU does.
    let rom = hil_monitor_boot(board.url()).await;
    let lines: Vec<&str> = rom.lines().collect();
    let load = lines
        .iter()
        .position(|l| l.ends_with("load 0x4010f000, len 3424, room 16 "))
        .unwrap_or_else(|| panic!("eboot's segment not loaded:\n{rom}"));
    assert!(
        lines[load..].iter().any(|l| l.ends_with("csum 0x2b")),
        "{rom}"
    );
    assert!(!rom.contains("csum err"), "{rom}");
}

/// The printable runs of at least four characters (what `strings` shows).
fn strings(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !(0x20..0x7f).contains(b))
        .filter(|run| run.len() >= 4)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect()
}

/// The twin's reference log formats, read from its source: every string literal
/// of `fn reference` that starts with a `[tag]`.
fn twin_formats() -> Vec<String> {
    let source =
        std::fs::read_to_string(root().join("firmware-under-test/twin/src/log.rs")).unwrap();
    let body = source
        .split("fn reference(")
        .nth(1)
        .and_then(|rest| rest.split("\nfn ").next())
        .expect("twin/src/log.rs has fn reference");
    let arms = body.matches("Line::").count();
    let formats: Vec<String> = body
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('['))
        .map(str::to_owned)
        .collect();
    assert_eq!(formats.len(), arms, "one format per line kind: {formats:?}");
    formats
}

/// A twin format (`[dns] resolved host={host} ip={ip}`) as a pattern over the
/// sketch's printf format (`[dns] resolved host=%s ip=%s`).
fn printf_pattern(format: &str) -> regex::Regex {
    let mut pattern = String::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}').map(|c| open + c).unwrap();
        pattern.push_str(r"%[-+ 0#]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?[sdiuxX]");
        rest = &rest[close + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    regex::Regex::new(&format!("{pattern}$")).unwrap()
}

#[test]
fn every_log_line_format_of_the_twin_is_among_the_real_images_strings() {
    let found = strings(&image());
    let mut missing = Vec::new();
    for format in twin_formats() {
        let pattern = printf_pattern(&format);
        if !found.iter().any(|s| pattern.is_match(s)) {
            missing.push(format);
        }
    }
    assert!(
        missing.is_empty(),
        "formats of the twin with no matching string in the real image:\n{}",
        missing.join("\n")
    );
    // The check can fail: a format the sketch does not have is not found.
    let invented = printf_pattern("[tls] resumed session={id}");
    assert!(!found.iter().any(|s| invented.is_match(s)));
}
