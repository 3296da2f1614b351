//! `hil flash` against a virtual board that misbehaves on purpose (a port that
//! refuses a rate, a link that garbles one, flash that does not keep a write, a
//! stub that hangs) and against bad input; esptool reads back what was written.

#![allow(clippy::unwrap_used)] // test helpers, like the tests, may unwrap

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_ok, esptool_read_flash, noise, text};
use hil::flash::{
    flash_with, BaudAttempt, BaudFailure, FlashError, FlashInput, FlashOptions, FlashOutcome,
    FlashReport, Span, Stage,
};
use hil::image::{ImageV1, Segment};
use hil::serial::PortSpec;
use hil::timeline::{BoardEvent, EventKind, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, Fault, VirtualBoard};

async fn board_with(dir: &Path, index: u32, faults: &[Fault]) -> (VirtualBoard, Timeline) {
    let timeline = Timeline::new();
    let mut options = BoardOptions::new(BoardIndex::new(index).unwrap(), dir.join("flash.bin"))
        .timeline(timeline.clone());
    for fault in faults {
        options = options.fault(*fault);
    }
    (VirtualBoard::start(options).await.unwrap(), timeline)
}

fn image(len: usize, seed: u32) -> Vec<u8> {
    ImageV1::new(
        0x4010_0004,
        vec![Segment::new(0x4010_0000, noise(len, seed))],
    )
    .to_bytes()
}

async fn flash_on(board: &VirtualBoard, data: &[u8]) -> Result<FlashReport, FlashError> {
    let spec: PortSpec = board.url().parse().unwrap();
    let input = FlashInput::Bin {
        data: data.to_vec(),
        offset: 0,
    };
    tokio::task::spawn_blocking(move || {
        flash_with(&spec, &input, &FlashOptions::default(), &mut |_| {})
    })
    .await
    .unwrap()
}

async fn hil(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .env_remove("HIL_FLASH_BAUD")
        .output()
        .await
        .unwrap()
}

async fn read_back(board: &VirtualBoard, len: usize, dir: &Path) -> Vec<u8> {
    esptool_read_flash(board.url(), 0, len, &dir.join("back.bin")).await
}

fn board_events(timeline: &Timeline) -> Vec<BoardEvent> {
    timeline
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Board { what } => Some(what),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_the_port_refuses_falls_back_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 21, &[Fault::RefuseBaudAbove(460_800)]).await;
    let data = image(40_000, 1);
    let report = flash_on(&board, &data).await.unwrap();
    assert_eq!(report.baud.used, 460_800);
    assert_eq!(
        report.baud.fell_back,
        vec![BaudAttempt {
            baud: 921_600,
            failure: BaudFailure::PortRefused
        }]
    );
    assert_eq!(report.outcome, FlashOutcome::Written { verified: true });

    // The command line says which rate it used, and why.
    std::fs::write(dir.path().join("image.bin"), image(40_000, 2)).unwrap();
    let out = hil(&[
        "flash",
        "--port",
        board.url(),
        dir.path().join("image.bin").to_str().unwrap(),
    ])
    .await;
    let out = assert_ok(&out);
    assert!(
        out.contains("Baud rate: 460800 (fell back from 921600: the port refused it)"),
        "{out}"
    );
    assert!(out.contains("at 460800 baud"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_the_link_garbles_falls_back_and_the_data_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 22, &[Fault::GarbleAbove(230_400)]).await;
    let data = image(60_000, 3);
    let report = flash_on(&board, &data).await.unwrap();
    assert_eq!(report.baud.used, 230_400);
    assert_eq!(
        report.baud.fell_back,
        vec![
            BaudAttempt {
                baud: 921_600,
                failure: BaudFailure::NoAnswer
            },
            BaudAttempt {
                baud: 460_800,
                failure: BaudFailure::NoAnswer
            }
        ]
    );
    assert_eq!(read_back(&board, data.len(), dir.path()).await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sector_that_did_not_keep_its_write_is_rewritten_once() {
    let dir = tempfile::tempdir().unwrap();
    let (board, timeline) = board_with(
        dir.path(),
        23,
        &[Fault::CorruptWrite {
            offset: 0x1_2345,
            times: 1,
        }],
    )
    .await;
    let data = image(100_000, 4);
    let report = flash_on(&board, &data).await.unwrap();
    assert_eq!(report.outcome, FlashOutcome::Written { verified: true });
    assert_eq!(
        report.rewritten,
        vec![Span {
            offset: 0x1_2000,
            len: 0x1000
        }]
    );
    // Written twice: the image, then that sector alone.
    let begins: Vec<BoardEvent> = board_events(&timeline)
        .into_iter()
        .filter(|e| matches!(e, BoardEvent::FlashBegin { .. }))
        .collect();
    assert_eq!(begins.len(), 2, "{begins:?}");
    assert_eq!(
        begins[1],
        BoardEvent::FlashBegin {
            offset: 0x1_2000,
            size: 0x1000,
            compressed: true
        }
    );
    assert_eq!(read_back(&board, data.len(), dir.path()).await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sector_that_never_keeps_its_write_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(
        dir.path(),
        24,
        &[Fault::CorruptWrite {
            offset: 0x1_2345,
            times: u32::MAX,
        }],
    )
    .await;
    let data = image(100_000, 5);
    let err = flash_on(&board, &data).await.unwrap_err();
    assert!(
        matches!(
            err,
            FlashError::VerifyFailed {
                offset: 0x1_2000,
                len: 0x1000,
                ..
            }
        ),
        "{err:?}"
    );

    let path = dir.path().join("image.bin");
    std::fs::write(&path, image(100_000, 6)).unwrap();
    let out = hil(&["flash", "--port", board.url(), path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(
            "flash from 0x012000 to 0x013000 does not hold the image after writing it twice"
        ),
        "{said}"
    );
    assert!(said.contains("hil::flash::verify"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stub_that_stops_answering_mid_write_leaves_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 25, &[Fault::StubHangsAtBlock(2)]).await;
    // Noise does not compress: 100 KB is seven 16 KB blocks.
    let data = image(100_000, 7);
    let err = flash_on(&board, &data).await.unwrap_err();
    match err {
        FlashError::StubSilent {
            stage: Stage::Writing { from: 0, to },
        } => assert_eq!(to as usize, data.len()),
        other => panic!("{other:?}"),
    }

    let path = dir.path().join("image.bin");
    std::fs::write(&path, &data).unwrap();
    let out = hil(&["flash", "--port", board.url(), path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("the flasher stub stopped answering while writing; flash from 0x000000 to"),
        "{said}"
    );
    assert!(said.contains("may be half-written"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_the_board_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (board, timeline) = board_with(dir.path(), 26, &[]).await;
    let not_an_image = dir.path().join("notes.txt");
    std::fs::write(&not_an_image, b"release notes, not firmware\n").unwrap();
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let bad_checksum = dir.path().join("bad.bin");
    let spoiled = ImageV1::new(0x4010_0004, vec![Segment::new(0x4010_0000, noise(64, 8))]);
    let stored = spoiled.computed_checksum() ^ 1;
    std::fs::write(
        &bad_checksum,
        spoiled.with_stored_checksum(stored).to_bytes(),
    )
    .unwrap();
    let small = dir.path().join("small.bin");
    std::fs::write(&small, noise(4096, 9)).unwrap();
    // Linked like an Arduino sketch (code at flash 0x1010, after eboot), which
    // espflash's conversion would lay over its own image at 0.
    let arduino_elf = dir.path().join("sketch.elf");
    std::fs::write(
        &arduino_elf,
        common::tiny_elf(&noise(8192, 10), 0x4020_1010, &noise(1000, 11)),
    )
    .unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![not_an_image.to_str().unwrap()],
            "is not an ESP8266 image: not an ESP8266 v1 image: first byte is 0x72",
        ),
        (vec![empty.to_str().unwrap()], "the image is empty"),
        (
            vec![arduino_elf.to_str().unwrap()],
            "the ELF is not linked for the layout espflash writes",
        ),
        (
            vec![bad_checksum.to_str().unwrap()],
            "does not match its segments",
        ),
        (
            vec!["--force", "--offset", "0xfff800", small.to_str().unwrap()],
            "run past the end of the 16384 KB flash",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["flash", "--port", board.url()];
        all.extend(args);
        let out = hil(&all).await;
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }
    // Not one connection reached the board.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !board_events(&timeline)
            .iter()
            .any(|e| matches!(e, BoardEvent::ClientConnected { .. })),
        "{:?}",
        board_events(&timeline)
    );

    // Past the end of this board's 4 MB: known once connected, and nothing is written.
    let out = hil(&[
        "flash",
        "--port",
        board.url(),
        "--force",
        "--offset",
        "0x3ff800",
        small.to_str().unwrap(),
    ])
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("run past the end of the 4096 KB flash"),
        "{said}"
    );
    assert!(!board_events(&timeline)
        .iter()
        .any(|e| matches!(e, BoardEvent::FlashBegin { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn flashing_connects_and_uploads_the_stub_at_the_flashing_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 25, &[]).await;
    let report = flash_on(&board, &image(20_000, 9)).await.unwrap();
    assert_eq!(report.baud.used, 921_600);
    assert!(report.baud.fell_back.is_empty(), "{:?}", report.baud);
    assert_eq!(report.outcome, FlashOutcome::Written { verified: true });
}

/// Resets the board on `port` into its ROM loader as esptool does (RTS pulls EN
/// low, DTR pulls GPIO0 low as EN rises), at the port's current rate.
fn reset_into_loader(port: &mut dyn serialport::SerialPort) {
    port.write_data_terminal_ready(false).unwrap();
    port.write_request_to_send(true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    port.write_data_terminal_ready(true).unwrap();
    port.write_request_to_send(false).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    port.write_data_terminal_ready(false).unwrap();
}

/// Sends one loader request and returns the answers' opcodes seen within 300 ms.
fn ask(port: &mut dyn serialport::SerialPort, op: u8, data: &[u8]) -> Vec<u8> {
    use hil_contract::{loader, slip};
    port.clear(serialport::ClearBuffer::Input).unwrap();
    port.write_all(&slip::encode(&loader::request(op, data, 0)))
        .unwrap();
    let mut decoder = slip::Decoder::new();
    let mut ops = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    let mut buf = [0u8; 512];
    while std::time::Instant::now() < deadline {
        if let Ok(n) = port.read(&mut buf) {
            for frame in decoder.feed(&buf[..n]) {
                if let Some(answer) = loader::Response::parse(&frame) {
                    ops.push(answer.op);
                }
            }
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rom_answers_only_at_the_rate_it_synced_to() {
    use hil_contract::loader::{command, SYNC_PAYLOAD};
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 26, &[]).await;
    let spec: PortSpec = board.url().parse().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut port = spec.open(115_200).unwrap();
        port.set_timeout(Duration::from_millis(20)).unwrap();
        let magic = 0x6000_0078u32.to_le_bytes();
        // Straight at 921600: the ROM measures the rate on SYNC and answers at it.
        port.set_baud_rate(921_600).unwrap();
        reset_into_loader(port.as_mut());
        assert!(ask(port.as_mut(), command::SYNC, &SYNC_PAYLOAD).contains(&command::SYNC));
        assert!(ask(port.as_mut(), command::READ_REG, &magic).contains(&command::READ_REG));
        // A client that moves to another rate without a reset is not followed:
        // the ROM keeps the divisor it measured, and nothing it hears is a command.
        port.set_baud_rate(115_200).unwrap();
        assert!(ask(port.as_mut(), command::READ_REG, &magic).is_empty());
        assert!(ask(port.as_mut(), command::SYNC, &SYNC_PAYLOAD).is_empty());
        // After a reset the ROM measures again: 115200 now works.
        reset_into_loader(port.as_mut());
        assert!(ask(port.as_mut(), command::SYNC, &SYNC_PAYLOAD).contains(&command::SYNC));
        assert!(ask(port.as_mut(), command::READ_REG, &magic).contains(&command::READ_REG));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_that_cannot_carry_the_rate_connects_at_115200_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _) = board_with(dir.path(), 27, &[Fault::GarbleAbove(115_200)]).await;
    std::fs::write(dir.path().join("image.bin"), image(20_000, 4)).unwrap();
    let out = hil(&[
        "flash",
        "--port",
        board.url(),
        dir.path().join("image.bin").to_str().unwrap(),
    ])
    .await;
    let out = assert_ok(&out);
    assert!(
        out.contains("Baud rate: 115200 (fell back from 921600: no answer at that rate; 460800: no answer at that rate; 230400: no answer at that rate)"),
        "{out}"
    );
}
