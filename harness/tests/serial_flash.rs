//! The harness's serial links and `hil flash` against peers nobody here wrote:
//! pyserial's RFC 2217 server (PortManager over a `loop://` port) for the client,
//! and esptool reading and writing the same virtual board as `hil flash`.

#![allow(clippy::unwrap_used)] // test helpers, like the tests, may unwrap

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::{assert_ok, board, esptool_on, esptool_read_flash, hil_monitor_boot, noise, text};
use hil::flash::{
    flash, flash_with, FlashError, FlashEvent, FlashInput, FlashOptions, FlashOutcome, FlashReport,
};
use hil::serial::{PortSpec, Rfc2217Port};
use hil::timeline::{BoardEvent, Cursor, EventKind, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use serialport::SerialPort;
use tokio::io::{AsyncBufReadExt, BufReader};

/// pyserial's own RFC 2217 server (serial.rfc2217.PortManager) in front of a
/// `loop://` port: whatever the client writes comes back. Prints the port, then
/// the final line states when the client leaves.
const PYSERIAL_SERVER: &str = r#"
import socket, sys, threading, serial, serial.rfc2217
ser = serial.serial_for_url("loop://", timeout=0.05)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
class Writer:
    def write(self, data):
        conn.sendall(data)
pm = serial.rfc2217.PortManager(ser, Writer())
alive = True
def pump():
    while alive:
        data = ser.read(4096)
        if data:
            conn.sendall(b"".join(pm.escape(data)))
t = threading.Thread(target=pump, daemon=True)
t.start()
while True:
    data = conn.recv(4096)
    if not data:
        break
    ser.write(b"".join(pm.filter(data)))
alive = False
print(f"baud={ser.baudrate} dtr={ser.dtr} rts={ser.rts}", flush=True)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn rfc2217_client_against_pyserials_server() {
    let mut server = tokio::process::Command::new(common::python())
        .args(["-c", PYSERIAL_SERVER])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    tokio::task::spawn_blocking(move || {
        let mut link = Rfc2217Port::open(&format!("127.0.0.1:{port}"), 115_200).unwrap();
        link.set_timeout(Duration::from_millis(500)).unwrap();
        // Every byte value, 0xFF included (doubled on the wire both ways).
        let sent: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
        link.write_all(&sent).unwrap();
        let mut back = vec![0u8; sent.len()];
        link.read_exact(&mut back).unwrap();
        assert_eq!(back, sent);
        // Each of these waits for the server's acknowledgement.
        link.set_baud_rate(74_880).unwrap();
        link.write_data_terminal_ready(false).unwrap();
        link.write_request_to_send(true).unwrap();
        link.clear(serialport::ClearBuffer::All).unwrap();
        assert_eq!(link.baud_rate().unwrap(), 74_880);
        // Nothing arrives: a read times out as a serial port's does.
        let err = link.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    })
    .await
    .unwrap();

    let last = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(last, "baud=74880 dtr=False rts=True");
}

#[tokio::test(flavor = "multi_thread")]
async fn rfc2217_client_refuses_a_non_telnet_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        use tokio::io::AsyncWriteExt;
        // Garbage that looks a bit like Telnet, then silence.
        let _ = socket
            .write_all(&[255, 250, 44, 200, 255, 240, 255, 255, 1, 2, 3])
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let result = tokio::task::spawn_blocking(move || Rfc2217Port::open(&addr.to_string(), 115_200))
        .await
        .unwrap();
    let err = result.unwrap_err();
    assert!(err.to_string().contains("does not speak RFC 2217"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hil_flash_then_esptool_reads_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 11).await;
    let image = noise(200_000, 77);
    let path = dir.path().join("image.bin");
    std::fs::write(&path, &image).unwrap();

    // The binary, as a user runs it.
    let hil = env!("CARGO_BIN_EXE_hil");
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(hil)
            .args(args)
            .output()
            .await
            .unwrap()
    };
    // Noise is not firmware: refused unless written as raw data.
    let mut args = vec![
        "flash".to_string(),
        "--port".into(),
        board.url().into(),
        "--offset".into(),
        "0x8000".into(),
        path.display().to_string(),
    ];
    let out = run(args.clone()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    args.push("--force".into());
    let out = assert_ok(&run(args.clone()).await);
    assert!(out.contains("MAC 18:fe:34:48:49:0b"), "{out}");
    assert!(out.contains("written and verified"), "{out}");

    let back = dir.path().join("back.bin");
    let read = esptool_read_flash(board.url(), 0x8000, image.len(), &back).await;
    assert!(read == image, "esptool read different bytes");

    // Unchanged image: nothing written.
    let out = assert_ok(&run(args).await);
    assert!(out.contains("unchanged"), "{out}");
    assert!(!out.contains("Writing"), "{out}");

    // Bad input: exit 2 with a message naming the problem.
    let out = run(vec![
        "flash".into(),
        "--port".into(),
        "nonsense://x".into(),
        "x.bin".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a serial port"));
}

#[tokio::test(flavor = "multi_thread")]
async fn esptool_writes_then_hil_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 12).await;
    let image = noise(150_000, 5);
    let path = dir.path().join("image.bin");
    std::fs::write(&path, &image).unwrap();
    assert_ok(
        &esptool_on(
            board.url(),
            &["write_flash", "0x20000", path.to_str().unwrap()],
        )
        .await,
    );

    let spec: PortSpec = board.url().parse().unwrap();
    let (same, changed) = tokio::task::spawn_blocking(move || {
        // hil asks the stub for the region's MD5: equal to what esptool wrote.
        let same = flash(
            &spec,
            &FlashInput::Bin {
                data: image.clone(),
                offset: 0x20000,
            },
            &mut |_| {},
        )
        .unwrap();
        let mut other = image;
        other[70_000] ^= 0x01;
        let changed = flash(
            &spec,
            &FlashInput::Bin {
                data: other,
                offset: 0x20000,
            },
            &mut |_| {},
        )
        .unwrap();
        (same, changed)
    })
    .await
    .unwrap();
    assert_eq!(same.outcome, FlashOutcome::Skipped);
    assert_eq!(same.device.mac.to_lowercase(), "18:fe:34:48:49:0c");
    assert_eq!(changed.outcome, FlashOutcome::Written { verified: true });
    let flash_file = std::fs::read(dir.path().join("flash.bin")).unwrap();
    assert_eq!(
        flash_file[0x20000 + 70_000],
        std::fs::read(&path).unwrap()[70_000] ^ 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hil_monitor_and_reset_over_rfc2217() {
    let dir = tempfile::tempdir().unwrap();
    let board = board(dir.path(), 13).await;
    let out = hil_monitor_boot(board.url()).await;
    // Timestamped lines; erased flash: the banner, then the ROM stops.
    let banner = out
        .lines()
        .find(|l| l.contains("ets Jan  8 2013,rst cause:2, boot mode:(3,6)"))
        .unwrap_or_else(|| panic!("no banner in:\n{out}"));
    assert!(banner.starts_with('[') && banner.contains("] "), "{banner}");
    assert!(out.lines().any(|l| l.ends_with("ets_main.c ")), "{out}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["reset", "--port", board.url()])
        .output()
        .await
        .unwrap();
    assert!(assert_ok(&out).contains("Reset rfc2217://"));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_marks_a_gap_and_reopens_when_the_port_comes_back() {
    use hil::serial::{follow, FollowOptions, SerialItem};
    use hil::timeline::{BoardEvent, EventKind, Timeline};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let first = board(dir.path(), 14).await;
    let addr = first.addr();
    let spec: PortSpec = first.url().parse().unwrap();
    let timeline = Timeline::new();
    let stop = Arc::new(AtomicBool::new(false));
    let items = Arc::new(Mutex::new(Vec::new()));
    let follower = {
        let (timeline, stop, items) = (timeline.clone(), stop.clone(), items.clone());
        tokio::task::spawn_blocking(move || {
            let options = FollowOptions {
                baud: 74_880,
                reset: true,
                timeline: Some(timeline),
                device: None,
            };
            follow(
                &spec,
                &options,
                &|| stop.load(Ordering::Relaxed),
                &mut |item| items.lock().unwrap().push(item),
            )
        })
    };
    let seen = |text: &'static str| {
        move |e: &hil::timeline::Event| match &e.kind {
            EventKind::SerialLine { line } => line.contains(text),
            EventKind::Board {
                what: BoardEvent::SerialGap { .. },
            } => text == "serial gap",
            EventKind::Board {
                what: BoardEvent::SerialReopened { .. },
            } => text == "serial reopened",
            _ => false,
        }
    };
    let wait = Duration::from_secs(10);
    assert!(timeline
        .wait_for(timeline.start(), wait, seen("ets Jan  8 2013"))
        .await
        .is_some());
    first.stop().await.unwrap();
    assert!(timeline
        .wait_for(timeline.start(), wait, seen("serial gap"))
        .await
        .is_some());
    let second = VirtualBoard::start(
        BoardOptions::new(BoardIndex::new(14).unwrap(), dir.path().join("flash.bin")).listen(addr),
    )
    .await
    .unwrap();
    assert!(timeline
        .wait_for(timeline.start(), wait, seen("serial reopened"))
        .await
        .is_some());
    stop.store(true, Ordering::Relaxed);
    follower.await.unwrap().unwrap();
    let items = items.lock().unwrap();
    let gap = items
        .iter()
        .position(|i| matches!(i, SerialItem::Gap { .. }))
        .unwrap();
    let back = items
        .iter()
        .position(|i| matches!(i, SerialItem::Reopened { .. }))
        .unwrap();
    assert!(gap < back);
    drop(second);
}

/// A valid image with `len` bytes of firmware-like (compressible) segment data.
fn firmware_like(len: usize, seed: u32) -> Vec<u8> {
    let words = noise(2048, seed);
    let body: Vec<u8> = noise(len, seed + 1)
        .chunks(4)
        .flat_map(|c| {
            let k = (c[0] as usize % 512) * 4;
            if c[1] < 40 {
                c.to_vec()
            } else {
                words[k..k + 4].to_vec()
            }
        })
        .collect();
    hil::image::ImageV1::new(
        0x4010_0004,
        vec![hil::image::Segment::new(0x4010_0000, body)],
    )
    .to_bytes()
}

fn board_events(timeline: &Timeline, from: Cursor) -> Vec<BoardEvent> {
    timeline
        .since(from)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Board { what } => Some(what),
            _ => None,
        })
        .collect()
}

/// Whether the ROM accepted an image of `segments` segments (the board notes it
/// once the reset's edge is processed, just after the client saw its answer).
async fn booted(timeline: &Timeline, segments: usize) -> bool {
    let accepted = |e: &hil::timeline::Event| matches!(&e.kind, EventKind::Board { what: BoardEvent::ImageAccepted { segments: n, .. } } if *n == segments);
    timeline
        .wait_for(timeline.start(), Duration::from_secs(5), accepted)
        .await
        .is_some()
}

async fn flash_on(
    board: &VirtualBoard,
    image: &[u8],
    options: FlashOptions,
) -> Result<FlashReport, FlashError> {
    let spec: PortSpec = board.url().parse().unwrap();
    let input = FlashInput::Bin {
        data: image.to_vec(),
        offset: 0,
    };
    tokio::task::spawn_blocking(move || flash_with(&spec, &input, &options, &mut |_| {}))
        .await
        .unwrap()
}

async fn esptool_reads(
    board: &VirtualBoard,
    baud: &str,
    offset: u32,
    len: usize,
    dir: &Path,
) -> Vec<u8> {
    let back = dir.join(format!("back-{offset:x}-{len}.bin"));
    let (offset, len) = (offset.to_string(), len.to_string());
    let args = [
        "--baud",
        baud,
        "read_flash",
        &offset,
        &len,
        back.to_str().unwrap(),
    ];
    let out = assert_ok(&esptool_on(board.url(), &args).await);
    assert!(baud == "115200" || out.contains("Changed."), "{out}");
    std::fs::read(&back).unwrap()
}

/// What the board counted on the connections that closed since `from`: (bytes
/// from the client, bytes to it).
async fn wire_since(timeline: &Timeline, from: Cursor) -> (u64, u64) {
    let closed = |e: &hil::timeline::Event| {
        matches!(
            e.kind,
            EventKind::Board {
                what: BoardEvent::ClientDisconnected { .. }
            }
        )
    };
    timeline
        .wait_for(from, Duration::from_secs(5), closed)
        .await;
    board_events(timeline, from)
        .into_iter()
        .fold((0, 0), |(rx, tx), e| match e {
            BoardEvent::ClientDisconnected { rx: r, tx: t } => (rx + r, tx + t),
            _ => (rx, tx),
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_writes_at_921600_on_a_line_rate_board_read_back_by_esptool() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(15).unwrap(), dir.path().join("flash.bin"))
        .timeline(timeline.clone())
        .line_rate(true);
    let board = VirtualBoard::start(options).await.unwrap();
    let image = firmware_like(150_000, 3);

    let report = flash_on(&board, &image, FlashOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, FlashOutcome::Written { verified: true });
    assert_eq!(report.baud.used, 921_600);
    assert!(report.baud.fell_back.is_empty());
    assert_eq!(report.written_bytes, image.len() as u64);
    assert!(report.compressed_bytes < image.len() as u64 * 3 / 4);
    // Compressed on the wire: far fewer bytes sent than the image has.
    assert!(
        report.wire.sent < image.len() as u64 * 3 / 4 + 12_000,
        "{report:?}"
    );
    let events = board_events(&timeline, timeline.start());
    assert!(
        events.contains(&BoardEvent::FlashBegin {
            offset: 0,
            size: image.len() as u32,
            compressed: true
        }),
        "{events:?}"
    );
    // hil reset the board into its firmware: the ROM accepted the image.
    assert!(booted(&timeline, 1).await, "{events:?}");

    // esptool, asking for 921600 itself, reads back what hil wrote.
    assert_eq!(
        esptool_reads(&board, "921600", 0, image.len(), dir.path()).await,
        image
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_release_rewrites_only_the_sectors_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(16).unwrap(), dir.path().join("flash.bin"))
        .timeline(timeline.clone());
    let board = VirtualBoard::start(options).await.unwrap();
    let image = firmware_like(300_000, 9);
    let first = flash_on(&board, &image, FlashOptions::default())
        .await
        .unwrap();
    assert_eq!(first.written_bytes, image.len() as u64);

    // Unchanged: one MD5 question, nothing written.
    let from = timeline.cursor();
    let same = flash_on(&board, &image, FlashOptions::default())
        .await
        .unwrap();
    assert_eq!(same.outcome, FlashOutcome::Skipped);
    assert_eq!((same.written_bytes, same.probes), (0, 1));
    let (unchanged_rx, _) = wire_since(&timeline, from).await;
    assert!(!board_events(&timeline, from)
        .iter()
        .any(|e| matches!(e, BoardEvent::FlashBegin { .. })));

    // One byte differs: its sector alone is written (compressed), once.
    let mut release = image.clone();
    release[0x2_3456] ^= 0x40;
    let from = timeline.cursor();
    let changed = flash_on(&board, &release, FlashOptions::default())
        .await
        .unwrap();
    assert_eq!(changed.outcome, FlashOutcome::Written { verified: true });
    assert_eq!(changed.written_bytes, 0x1000);
    let begins: Vec<BoardEvent> = board_events(&timeline, from)
        .into_iter()
        .filter(|e| matches!(e, BoardEvent::FlashBegin { .. }))
        .collect();
    assert_eq!(
        begins,
        vec![BoardEvent::FlashBegin {
            offset: 0x2_3000,
            size: 0x1000,
            compressed: true
        }]
    );
    // On the wire: the unchanged run's bytes, plus the MD5 questions and one
    // compressed sector.
    let (changed_rx, _) = wire_since(&timeline, from).await;
    assert!(
        changed_rx < unchanged_rx + 6_000,
        "{changed_rx} bytes sent vs {unchanged_rx} for an unchanged image"
    );

    // esptool (the independent reader) sees the release.
    assert_eq!(
        esptool_reads(&board, "115200", 0, release.len(), dir.path()).await,
        release
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_elf_is_converted_written_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(17).unwrap(), dir.path().join("flash.bin"))
        .timeline(timeline.clone());
    let board = VirtualBoard::start(options).await.unwrap();
    let iram = noise(2000, 41);
    let irom = noise(30_000, 42);
    let elf = dir.path().join("app.elf");
    std::fs::write(&elf, common::tiny_elf(&iram, 0x4021_0000, &irom)).unwrap();

    let input = FlashInput::from_file(&elf, None).unwrap();
    let spec: PortSpec = board.url().parse().unwrap();
    let mut verified = Vec::new();
    let report = tokio::task::spawn_blocking(move || {
        flash_with(&spec, &input, &FlashOptions::default(), &mut |e| {
            if let FlashEvent::Verified { region, .. } = e {
                verified.push(region.offset);
            }
        })
        .map(|r| (r, verified))
    })
    .await
    .unwrap()
    .unwrap();
    let (report, verified) = report;
    assert_eq!(report.outcome, FlashOutcome::Written { verified: true });
    // Both regions verified by MD5: the image at 0 and the flash code.
    assert_eq!(verified, vec![0, 0x10000]);
    assert!(booted(&timeline, 1).await);
    assert_eq!(
        esptool_reads(&board, "115200", 0x10000, irom.len(), dir.path()).await,
        irom
    );
}
