//! The virtual board against peers nobody here wrote: esptool 4.8.1 (ROM loader and
//! its own flasher stub) and pyserial 3.5's RFC 2217 client.

#![allow(clippy::unwrap_used)] // test helpers, like the tests, may unwrap

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{
    assert_ok, board, esptool, esptool_on, esptool_read_flash, noise, python_script, text,
};
use hil::image::{ImageV1, Segment};
use hil::timeline::{BoardEvent, EventKind, RomMode, Timeline};
use hil::vboard::{
    BoardIndex, BoardOptions, BoxFuture, FirmwareBoot, FirmwareRunner, VirtualBoard,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

fn valid_image(seed: u32) -> Vec<u8> {
    ImageV1::new(
        0x4010_0004,
        vec![
            Segment::new(0x4010_0000, noise(3000, seed)),
            Segment::new(0x3FFE_8000, noise(500, seed + 1)),
        ],
    )
    .to_bytes()
}

/// pyserial opens the port (no ?ign_set_control, so every SET-CONTROL must be
/// acknowledged), pulses EN through RTS with DTR released (a hard reset into
/// flash boot) and reads at `baud` until `until` shows up or `seconds` pass.
const READ_BOOT: &str = r#"
import sys, time, serial
url, baud, until, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
s = serial.serial_for_url(url, baudrate=baud, timeout=0.2)
s.dtr = False
s.rts = True
time.sleep(0.1)
s.rts = False
buf = b""
deadline = time.time() + seconds
while time.time() < deadline:
    buf += s.read(4096)
    if until and until in buf:
        break
s.close()
sys.stdout.write(buf.hex())
"#;

async fn read_boot(url: &str, baud: u32, until: &str, seconds: f32) -> Vec<u8> {
    let output = python_script(
        READ_BOOT,
        &[url, &baud.to_string(), until, &seconds.to_string()],
    )
    .await;
    let out = assert_ok(&output);
    hex::decode(out.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn esptool_identifies_the_chip() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 7).await;
    // Auto-detection: GET_SECURITY_INFO is refused (01 05), esptool reconnects and
    // reads the magic register.
    let out = assert_ok(&esptool(&["--port", board.url(), "chip_id"]).await);
    assert!(out.contains("Chip is ESP8266EX"), "{out}");
    assert!(out.contains("Crystal is 26MHz"), "{out}");
    assert!(out.contains("Chip ID: 0x00484907"), "{out}");
    let out = assert_ok(&esptool_on(board.url(), &["read_mac"]).await);
    assert!(out.contains("MAC: 18:fe:34:48:49:07"), "{out}");
    let out = assert_ok(&esptool_on(board.url(), &["--no-stub", "flash_id"]).await);
    assert!(out.contains("Manufacturer: ef"), "{out}");
    assert!(out.contains("Device: 4016"), "{out}");
    assert!(out.contains("Detected flash size: 4MB"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn write_flash_with_the_rom_and_with_the_stub_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(2).unwrap(), dir.path().join("flash.bin"))
        .timeline(timeline.clone());
    let board = VirtualBoard::start(options).await.unwrap();
    let url = board.url().to_string();

    // ROM loader, uncompressed 1 KB blocks (kept small: pyserial's RFC 2217 client
    // renegotiates the port on every timeout change, ~0.2 s per block).
    let small = noise(6 * 1024 + 100, 11);
    let small_path = dir.path().join("small.bin");
    std::fs::write(&small_path, &small).unwrap();
    let out = assert_ok(
        &esptool_on(
            &url,
            &[
                "--no-stub",
                "write_flash",
                "0x100000",
                small_path.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(out.contains("Wrote 7168 bytes at 0x00100000"), "{out}");

    // Stub: compressed, MD5-verified by esptool itself.
    let big = valid_image(5)
        .into_iter()
        .chain(noise(300_000, 12))
        .collect::<Vec<u8>>();
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let out =
        assert_ok(&esptool_on(&url, &["write_flash", "0x0", big_path.to_str().unwrap()]).await);
    assert!(out.contains("Stub running..."), "{out}");
    assert!(out.contains("compressed) at 0x00000000"), "{out}");
    assert!(out.contains("Hash of data verified."), "{out}");

    // Read both back through the stub's READ_FLASH and compare byte for byte.
    // The second read asks the stub for 460800 baud first (CHANGE_BAUDRATE, then
    // SET-BAUDRATE on the RFC 2217 link).
    for (offset, expected, name, baud) in [
        ("0x100000", &small, "small", "115200"),
        ("0x0", &big, "big", "460800"),
    ] {
        let back = dir.path().join(format!("{name}.back"));
        let len = expected.len().to_string();
        let out = assert_ok(
            &esptool_on(
                &url,
                &[
                    "--baud",
                    baud,
                    "read_flash",
                    offset,
                    &len,
                    back.to_str().unwrap(),
                ],
            )
            .await,
        );
        if baud != "115200" {
            assert!(out.contains("Changed."), "{out}");
        }
        assert!(std::fs::read(&back).unwrap() == *expected, "{name} differs");
    }
    // ERASE_REGION through the stub, then the region reads erased.
    assert_ok(&esptool_on(&url, &["erase_region", "0x100000", "0x1000"]).await);
    let erased = esptool_read_flash(&url, 0x100000, 0x1100, &dir.path().join("erased.back")).await;
    assert!(erased[..0x1000].iter().all(|b| *b == 0xFF));
    assert_eq!(erased[0x1000..], small[0x1000..0x1100]);
    // The ROM erased whole sectors: the rest of the small image's last sector is FF.
    let flash = std::fs::read(dir.path().join("flash.bin")).unwrap();
    assert!(flash[0x100000 + small.len()..0x102000]
        .iter()
        .all(|b| *b == 0xFF));

    let board_events: Vec<BoardEvent> = timeline
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Board { what } => Some(what),
            _ => None,
        })
        .collect();
    assert!(board_events.contains(&BoardEvent::RomStarted {
        mode: RomMode::Download,
        cause: 2
    }));
    assert!(
        board_events
            .iter()
            .any(|w| matches!(w, BoardEvent::StubStarted { .. })),
        "{board_events:?}"
    );
    assert!(
        board_events.contains(&BoardEvent::FlashWritten {
            offset: 0,
            bytes: big.len() as u64
        }),
        "{board_events:?}"
    );
    assert!(board_events
        .iter()
        .any(|w| matches!(w, BoardEvent::ImageAccepted { segments: 2, .. })));
}

/// The start of a Python client that drives the loader by hand: it opens the
/// port (`s`) and resets the board into download mode as esptool does; `req`
/// frames a request, `frames(n)` waits (5 s unless told) for the next `n`
/// answers, unframed, and `buf` holds what came after them.
const LOADER_CLIENT: &str = r#"
import sys, time, struct, serial
s = serial.serial_for_url(sys.argv[1], baudrate=115200, timeout=0.2)
s.dtr = False; s.rts = True; time.sleep(0.1); s.dtr = True; s.rts = False; time.sleep(0.05); s.dtr = False
def slip(b):
    return b"\xc0" + b.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"
def req(op, data, chk=0):
    return slip(struct.pack("<BBHI", 0, op, len(data), chk) + data)
buf = b""
def frames(n, seconds=5):
    global buf
    out = []
    deadline = time.time() + seconds
    while len(out) < n and time.time() < deadline:
        buf += s.read(max(1, s.in_waiting))
        while buf.count(b"\xc0") >= 2:
            start = buf.index(b"\xc0"); end = buf.index(b"\xc0", start + 1)
            body = buf[start + 1:end]; buf = buf[end + 1:]
            if body:
                out.append(body.replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))
    return out
"#;

/// Runs `script` after [`LOADER_CLIENT`] against the board at `url`; what it
/// printed.
async fn loader_client(url: &str, script: &str) -> String {
    assert_ok(&python_script(&format!("{LOADER_CLIENT}{script}"), &[url]).await)
}

/// The rest of a line of a loader client's output that starts with `tag`.
fn answer_in(out: &str, tag: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no {tag} line in:\n{out}"))
        .to_string()
}

/// Raw loader traffic: noise around frames, a bad checksum, an unknown command.
/// Prints one line per answer, hex-encoded.
const RAW_LOADER: &str = r#"
s.write(b"noise\x00\xff\x55" + req(8, b"\x07\x07\x12\x20" + b"\x55" * 32) + b"more noise\xff")
print("sync", " ".join(f.hex() for f in frames(8)))
s.write(req(2, struct.pack("<IIII", 0x400, 1, 0x400, 0x20000)))
print("begin", frames(1)[0].hex())
data = bytes(range(256)) * 4
good = 0xEF
for b in data:
    good ^= b
s.write(req(3, struct.pack("<IIII", len(data), 0, 0, 0) + data, good ^ 1))
print("badchk", frames(1)[0].hex())
s.write(b"\x13\x37 junk between frames " + req(0x55, b""))
print("unknown", frames(1)[0].hex())
s.write(req(3, struct.pack("<IIII", len(data), 0, 0, 0) + data, good))
print("goodchk", frames(1)[0].hex())
s.write(req(4, struct.pack("<I", 1)))
print("end", frames(1)[0].hex())
s.close()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_rom_statuses_and_noise_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 3).await;
    let out = loader_client(board.url(), RAW_LOADER).await;
    let answer = |tag: &str| answer_in(&out, tag);
    let sync = answer("sync");
    assert_eq!(sync.split(' ').count(), 8, "{out}");
    assert!(
        sync.split(' ').all(|f| f == "01080200070712200000"),
        "{out}"
    );
    assert_eq!(answer("begin"), "01020200000000000000");
    assert_eq!(answer("badchk"), "01030200000000000107");
    assert_eq!(answer("unknown"), "01550200000000000105");
    assert_eq!(answer("goodchk"), "01030200000000000000");
    assert_eq!(answer("end"), "01040200000000000000");

    // The board is still a board: esptool reads what the good block wrote.
    let back = esptool_read_flash(board.url(), 0x20000, 1024, &dir.path().join("back.bin")).await;
    let expected: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    assert_eq!(back, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_banner_and_image_check_as_the_rom_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    // A corrupt image: right structure, wrong checksum byte.
    let mut flash = vec![0xFFu8; hil::vboard::FLASH_SIZE];
    let corrupt = ImageV1::new(0x4010_0004, vec![Segment::new(0x4010_0000, noise(1384, 3))]);
    let corrupt = corrupt
        .clone()
        .with_stored_checksum(corrupt.computed_checksum() ^ 0x5A);
    let bytes = corrupt.to_bytes();
    flash[..bytes.len()].copy_from_slice(&bytes);
    std::fs::write(dir.path().join("flash.bin"), &flash).unwrap();
    let board = board(dir.path(), 4).await;

    let seen = read_boot(board.url(), 74_880, "ets_main.c", 10.0).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains(" ets Jan  8 2013,rst cause:2, boot mode:(3,6)"),
        "{seen:?}"
    );
    assert!(
        seen.contains("load 0x40100000, len 1384, room 16 \r\ntail 8"),
        "{seen:?}"
    );
    assert!(seen.contains("csum err\r\nets_main.c"), "{seen:?}");

    // At 115200 the same waveform arrives as garbage, as on a real board.
    let garbled = read_boot(board.url(), 115_200, "", 1.5).await;
    assert!(!garbled.is_empty());
    assert!(!String::from_utf8_lossy(&garbled).contains("ets Jan"));
    board.stop().await.unwrap();

    // Erased flash ends in ets_main.c too.
    let erased = tempfile::tempdir().unwrap();
    let board = board_at(erased.path()).await;
    let seen = read_boot(board.url(), 74_880, "ets_main.c", 10.0).await;
    assert!(String::from_utf8_lossy(&seen).contains("ets_main.c"));
}

async fn board_at(dir: &Path) -> VirtualBoard {
    board(dir, 5).await
}

struct RecordingTwin(mpsc::UnboundedSender<ImageV1>);

impl FirmwareRunner for RecordingTwin {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        let seen = self.0.clone();
        Box::pin(async move {
            let FirmwareBoot {
                image, mut console, ..
            } = boot;
            let _ = seen.send(image);
            console.set_baud(115_200);
            console.write(b"\r\n[boot] fw=recording-twin\r\n");
            // Echo what the client types, as a line.
            while let Some(bytes) = console.read().await {
                console.write(&bytes);
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_image_is_handed_to_the_firmware_runner() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let options = BoardOptions::new(BoardIndex::new(6).unwrap(), dir.path().join("flash.bin"))
        .firmware(Arc::new(RecordingTwin(tx)));
    let board = VirtualBoard::start(options).await.unwrap();
    let image = valid_image(9);
    let path = dir.path().join("image.bin");
    std::fs::write(&path, &image).unwrap();
    // write_flash ends with a hard reset: the ROM boots the image.
    assert_ok(&esptool_on(board.url(), &["write_flash", "0", path.to_str().unwrap()]).await);
    let booted = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(booted.to_bytes(), image);

    // At 115200: the ROM's lines are garbage, the firmware's line reads clean.
    let seen = read_boot(board.url(), 115_200, "recording-twin\r\n", 10.0).await;
    assert!(String::from_utf8_lossy(&seen).contains("[boot] fw=recording-twin"));
    // At 74880: the ROM's lines read clean and end in csum.
    let seen = read_boot(board.url(), 74_880, "csum 0x", 10.0).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains("load 0x40100000, len 3000, room 16"),
        "{seen:?}"
    );
    assert!(!seen.contains("csum err"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_vanishes_mid_flash_leaves_the_board_usable() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 8).await;
    let big = noise(1024 * 1024, 21);
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();

    let mut child = tokio::process::Command::new(common::python())
        .args([
            "-m",
            "esptool",
            "--port",
            board.url(),
            "--chip",
            "esp8266",
            "write_flash",
            "0",
        ])
        .arg(&big_path)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).split(b'\n');
    let started = tokio::time::timeout(Duration::from_secs(120), async {
        let mut blocks = 0;
        while let Ok(Some(line)) = lines.next_segment().await {
            if String::from_utf8_lossy(&line).contains("Writing at 0x") {
                blocks += 1;
                if blocks == 3 {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(started, "esptool never started writing");
    child.kill().await.unwrap();

    let small = valid_image(4);
    let small_path = dir.path().join("small.bin");
    std::fs::write(&small_path, &small).unwrap();
    let out = esptool_on(
        board.url(),
        &["write_flash", "0", small_path.to_str().unwrap()],
    )
    .await;
    let out = text(&out);
    assert!(out.contains("Hash of data verified."), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_boards_at_once_each_with_its_own_identity() {
    let dir = tempfile::tempdir().unwrap();
    let boards =
        hil::vboard::start_boards(dir.path(), 3, None, Arc::new(hil::vboard::SilentFirmware))
            .await
            .unwrap();
    let handles: Vec<_> = boards
        .iter()
        .map(|b| {
            let url = b.url().to_string();
            tokio::spawn(async move { esptool_on(&url, &["--no-stub", "read_mac"]).await })
        })
        .collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    for (k, output) in outputs.iter().enumerate() {
        let out = assert_ok(output);
        assert!(
            out.contains(&format!("MAC: 18:fe:34:48:49:{:02x}", k + 1)),
            "{out}"
        );
        assert!(dir.path().join(format!("board-{}.flash", k + 1)).exists());
    }
    assert_eq!(boards[2].index().device_ip().to_string(), "127.0.1.3");
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_hil_vboard_serves_esptool() {
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("standalone.flash");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "vboard",
            "--listen",
            "127.0.0.1:0",
            "--index",
            "9",
            "--line-rate",
            "--flash",
        ])
        .arg(&flash)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("rfc2217://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    let out = assert_ok(&esptool_on(&url, &["--no-stub", "read_mac"]).await);
    assert!(out.contains("MAC: 18:fe:34:48:49:09"), "{out}");
    assert_eq!(
        std::fs::metadata(&flash).unwrap().len(),
        hil::vboard::FLASH_SIZE as u64
    );
    child.kill().await.unwrap();

    // Bad input: a non-loopback address is refused with exit 2.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["vboard", "--listen", "0.0.0.0:0", "--flash"])
        .arg(&flash)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

#[tokio::test(flavor = "multi_thread")]
async fn esptool_at_every_baud_it_asks_for_on_a_line_rate_board() {
    let dir = tempfile::tempdir().unwrap();
    let options = BoardOptions::new(BoardIndex::new(10).unwrap(), dir.path().join("flash.bin"))
        .line_rate(true);
    let board = VirtualBoard::start(options).await.unwrap();
    for (k, baud) in ["115200", "230400", "460800", "921600", "1500000"]
        .into_iter()
        .enumerate()
    {
        let image = valid_image(30 + k as u32);
        let path = dir.path().join(format!("image-{baud}.bin"));
        std::fs::write(&path, &image).unwrap();
        // esptool's stub takes CHANGE_BAUDRATE, then pyserial sets the RFC 2217
        // port's rate: the board follows both, and the data goes at that rate.
        let out = assert_ok(
            &esptool_on(
                board.url(),
                &[
                    "--baud",
                    baud,
                    "write_flash",
                    "-z",
                    "0",
                    path.to_str().unwrap(),
                ],
            )
            .await,
        );
        assert!(out.contains("Hash of data verified."), "{baud}: {out}");
        if baud != "115200" {
            assert!(
                out.contains(&format!("Changing baud rate to {baud}")),
                "{out}"
            );
            assert!(out.contains("Changed."), "{out}");
        }
        let flash = std::fs::read(dir.path().join("flash.bin")).unwrap();
        assert_eq!(flash[..image.len()], image[..], "{baud}");
    }
}

/// Download mode, SYNC, a "stub" (code uploaded and started inside itself),
/// then CHANGE_BAUDRATE to 460800, and a register read at the old rate (the
/// chip no longer understands it) and at the new one.
const STUB_RATE: &str = r#"
# What the board printed at power-on, before the reset, is not the loader's.
time.sleep(0.05)
s.reset_input_buffer()
s.write(req(8, b"\x07\x07\x12\x20" + b"\x55" * 32))
frames(8)
code = b"\x00\x00\x00\x00"
s.write(req(5, struct.pack("<IIII", 4, 1, 4, 0x4010E000)))
frames(1)
s.write(req(7, struct.pack("<IIII", 4, 0, 0, 0) + code, 0xEF))
frames(1)
s.write(req(6, struct.pack("<II", 0, 0x4010E000)))
print("started", " ".join(f.hex() for f in frames(2)))
s.write(req(0x0F, struct.pack("<II", 460800, 115200)))
print("change", frames(1)[0].hex())
time.sleep(0.05)
buf = b""
s.reset_input_buffer()
s.write(req(0x0A, struct.pack("<I", 0x40001000)))
print("old-rate", len(frames(1, 1.0)))
s.baudrate = 460800
s.reset_input_buffer()
buf = b""
s.write(req(0x0A, struct.pack("<I", 0x40001000)))
print("new-rate", frames(1)[0].hex())
s.close()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn after_change_baudrate_only_a_client_at_the_new_rate_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 11).await;
    let out = loader_client(board.url(), STUB_RATE).await;
    let answer = |tag: &str| answer_in(&out, tag);
    assert_eq!(answer("started"), "01060200000000000000 4f484149", "{out}");
    // The stub answers at the old rate, then switches.
    assert_eq!(answer("change"), "010f0200000000000000");
    // At 115200 the chip now hears garbage: no answer at all.
    assert_eq!(answer("old-rate"), "0");
    // At 460800 it reads the magic register.
    assert_eq!(answer("new-rate"), "010a020001c1f0ff0000");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_line_rate_bytes_take_ten_bit_times_each_way() {
    let dir = tempfile::tempdir().unwrap();
    // A valid image already in flash, so the board boots the echoing twin.
    let mut flash = vec![0xFFu8; hil::vboard::FLASH_SIZE];
    let image = valid_image(12);
    flash[..image.len()].copy_from_slice(&image);
    std::fs::write(dir.path().join("flash.bin"), &flash).unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let options = BoardOptions::new(BoardIndex::new(12).unwrap(), dir.path().join("flash.bin"))
        .firmware(Arc::new(RecordingTwin(tx)))
        .line_rate(true);
    let board = VirtualBoard::start(options).await.unwrap();
    let url = board.url().to_string();
    let (seconds, echoed, what) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let spec: hil::serial::PortSpec = url.parse().unwrap();
        let mut port = spec.open(115_200).unwrap();
        port.set_timeout(Duration::from_millis(200)).unwrap();
        hil::serial::hard_reset(port.as_mut()).unwrap();
        // Wait for the twin's line and then quiet (the board's power-on boot may
        // have printed one too), then time an echo of 5760 bytes: half a second
        // each way at 115200 (10 bits a byte), overlapping.
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut quiet_since = std::time::Instant::now();
        while !String::from_utf8_lossy(&seen).contains("recording-twin\r\n")
            || quiet_since.elapsed() < Duration::from_millis(400)
        {
            if let Ok(n) = port.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
                quiet_since = std::time::Instant::now();
            }
        }
        let sent: Vec<u8> = (0..5760).map(|i| b'a' + (i % 26) as u8).collect();
        let started = std::time::Instant::now();
        port.write_all(&sent).unwrap();
        let mut echoed = Vec::new();
        while echoed.len() < sent.len() && started.elapsed() < Duration::from_secs(10) {
            if let Ok(n) = port.read(&mut buf) {
                echoed.extend_from_slice(&buf[..n]);
            }
        }
        let same = echoed == sent;
        let first_difference = echoed.iter().zip(&sent).position(|(a, b)| a != b);
        (
            started.elapsed().as_secs_f64(),
            same,
            format!(
                "{} of {} bytes back, first difference at {first_difference:?}: {:?}",
                echoed.len(),
                sent.len(),
                String::from_utf8_lossy(&echoed[..echoed.len().min(300)])
            ),
        )
    })
    .await
    .unwrap();
    let (seconds, echoed, what) = (seconds, echoed, what);
    assert!(echoed, "{what}");
    // A lower bound the model guarantees (the last byte cannot be back before
    // it went out and came back): no upper bound, this is not a speed target.
    assert!(
        seconds >= 0.5,
        "an echo of 5760 bytes at 115200 took {seconds} s"
    );
}
