//! A virtual board at a real board's pace: its output crosses the UART at line
//! rate byte by byte, every reset prints the ROM's lines at the rate the chip
//! uses for that reset, a brown-out resets it as a power-on would, and the
//! commands that start virtual boards take `--pace`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hil::vboard::{
    BoardIndex, BoardOptions, BoxFuture, Fault, FirmwareBoot, FirmwareRunner, ResetCause,
    VirtualBoard, FLASH_SIZE,
};
use hil_contract::descriptor::Variant;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A flash file holding a valid image, so the ROM hands over to the runner.
fn flash_with_image(dir: &Path) -> std::path::PathBuf {
    let mut flash = hil::vfirmware::build(&Variant::Reference.descriptor()).to_bytes();
    flash.resize(FLASH_SIZE, 0xFF);
    let path = dir.join("board.flash");
    std::fs::write(&path, flash).unwrap();
    path
}

/// Everything the client reads until `until`, each chunk with its arrival time.
async fn read_until(stream: &mut TcpStream, until: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => chunks.push((Instant::now(), buf[..n].to_vec())),
            _ => return chunks,
        }
    }
}

/// When the byte at `offset` of everything read arrived.
fn arrival(chunks: &[(Instant, Vec<u8>)], offset: usize) -> Instant {
    let mut seen = 0;
    for (at, bytes) in chunks {
        seen += bytes.len();
        if offset < seen {
            return *at;
        }
    }
    panic!("offset {offset} beyond the {seen} bytes read");
}

fn all(chunks: &[(Instant, Vec<u8>)]) -> Vec<u8> {
    chunks.iter().flat_map(|(_, b)| b.clone()).collect()
}

fn find(haystack: &[u8], needle: &str) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

/// Prints the core's exception dump at 115200 a moment after boot, as the
/// crash-after-connect twin does.
struct DumpAfter(Duration);

impl FirmwareRunner for DumpAfter {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        let wait = self.0;
        Box::pin(async move {
            let mut console = boot.console;
            console.set_baud(115_200);
            tokio::time::sleep(wait).await;
            for line in hil_twin::postmortem::exception_dump() {
                console.write(format!("{line}\r\n").as_bytes());
            }
            std::future::pending::<()>().await;
        })
    }
}

#[tokio::test]
async fn a_dump_streams_over_the_time_it_takes_at_115200() {
    let dir = tempfile::tempdir().unwrap();
    let options = BoardOptions::new(BoardIndex::new(1).unwrap(), flash_with_image(dir.path()))
        .line_rate(true)
        .firmware(Arc::new(DumpAfter(Duration::from_millis(400))));
    let board = VirtualBoard::start(options).await.unwrap();
    let mut client = TcpStream::connect(board.addr()).await.unwrap();
    let chunks = read_until(&mut client, Instant::now() + Duration::from_secs(2)).await;
    let text = all(&chunks);
    let dump = hil_twin::postmortem::exception_dump();
    let first = dump.iter().find(|l| l.starts_with("Exception (")).unwrap();
    let last = dump.iter().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(dump.len() >= 25, "a dump of {} lines", dump.len());
    let start = find(&text, first).expect("the dump's header");
    let end = text
        .windows(last.len())
        .rposition(|w| w == last.as_bytes())
        .expect("the dump's last row")
        + last.len()
        - 1;
    let spread = arrival(&chunks, end) - arrival(&chunks, start);
    // Bytes from the header to the last row's end, 10 bits each at 115200.
    let on_the_wire = Duration::from_micros((end - start) as u64 * 10 * 1_000_000 / 115_200);
    // This dump is about 900 bytes: some 78 ms at 115200 (a 30-line dump with
    // more stack rows takes 100-300 ms). Delivered whole, the spread would be 0.
    assert!(
        spread >= on_the_wire.mul_f32(0.8) && spread <= on_the_wire.mul_f32(1.5),
        "header to last row in {spread:?}; the wire takes {on_the_wire:?}"
    );
    assert!(spread >= Duration::from_millis(50), "{spread:?}");
    board.stop().await.unwrap();
}

/// Restarts the chip with each cause in turn, a moment after each boot,
/// printing a line at 115200 first.
struct RestartChain;

impl FirmwareRunner for RestartChain {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        Box::pin(async move {
            let mut console = boot.console;
            console.set_baud(115_200);
            tokio::time::sleep(Duration::from_millis(300)).await;
            console.write(format!("\r\nbooted after {:?}\r\n", boot.cause).as_bytes());
            let next = match boot.cause {
                ResetCause::PowerOn => Some(ResetCause::SoftwareRestart),
                ResetCause::SoftwareRestart => Some(ResetCause::HardwareWatchdog),
                ResetCause::HardwareWatchdog => Some(ResetCause::Exception),
                _ => None,
            };
            match next {
                Some(cause) => console.restart(cause),
                None => std::future::pending::<()>().await,
            }
        })
    }
}

#[tokio::test]
async fn restarts_the_chip_asks_for_print_the_rom_at_115200_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let options = BoardOptions::new(BoardIndex::new(2).unwrap(), flash_with_image(dir.path()))
        .firmware(Arc::new(RestartChain));
    let board = VirtualBoard::start(options).await.unwrap();
    let mut client = TcpStream::connect(board.addr()).await.unwrap();
    let text = all(&read_until(&mut client, Instant::now() + Duration::from_millis(2_500)).await);
    let text = String::from_utf8_lossy(&text);
    // The power-on banner went out at 74880 before we listened; every restart
    // after it is readable at 115200, cause and all.
    let software = text
        .find(" ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\nload 0x")
        .unwrap_or_else(|| panic!("the software restart's banner, readable:\n{text}"));
    let watchdog = text
        .find(" ets Jan  8 2013,rst cause:4, boot mode:(3,6)\r\n\r\nwdt reset\r\nload 0x")
        .unwrap_or_else(|| panic!("the watchdog's banner and `wdt reset`:\n{text}"));
    let exception = text[watchdog..]
        .find("rst cause:2, boot mode:(3,6)")
        .unwrap_or_else(|| panic!("the exception restart's banner:\n{text}"));
    assert!(software < watchdog, "{text}");
    assert!(exception > 0);
    assert!(text.contains("booted after Exception"), "{text}");
    board.stop().await.unwrap();
}

/// Prints one line at 115200 at every boot.
struct Hello;

impl FirmwareRunner for Hello {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        Box::pin(async move {
            let mut console = boot.console;
            console.set_baud(115_200);
            tokio::time::sleep(Duration::from_millis(100)).await;
            console.write(format!("\r\nhello after {:?}\r\n", boot.cause).as_bytes());
            std::future::pending::<()>().await;
        })
    }
}

#[tokio::test]
async fn a_brown_out_resets_the_chip_as_a_power_on_and_its_banner_is_garbage_at_115200() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = hil::timeline::Timeline::new();
    let options = BoardOptions::new(BoardIndex::new(3).unwrap(), flash_with_image(dir.path()))
        .timeline(timeline.clone())
        .fault(Fault::BrownOutAfter(Duration::from_millis(600)))
        .firmware(Arc::new(Hello));
    let board = VirtualBoard::start(options).await.unwrap();
    let mut client = TcpStream::connect(board.addr()).await.unwrap();
    let bytes = all(&read_until(&mut client, Instant::now() + Duration::from_millis(1_500)).await);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("hello after BrownOut"), "{text}");
    // The ROM spoke at 74880: a console at 115200 reads no banner.
    assert!(!text.contains("rst cause"), "{text}");
    assert!(!text.contains("load 0x"), "{text}");
    let before = text.find("hello after BrownOut").unwrap();
    assert!(
        !bytes[..before].is_empty(),
        "the garbled banner comes first: {text}"
    );
    let power_ons = timeline
        .snapshot()
        .iter()
        .filter(|e| {
            matches!(
                &e.kind,
                hil::timeline::EventKind::Board {
                    what: hil::timeline::BoardEvent::RomStarted { cause: 1, .. }
                }
            )
        })
        .count();
    assert!(power_ons >= 2, "power-on, then the brown-out: {power_ons}");
    board.stop().await.unwrap();
}

#[test]
fn the_three_commands_that_start_virtual_boards_take_pace_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["run", "demo", "vboard"] {
        let out = common::cli::hil(&[command, "--help"], dir.path());
        let help = common::cli::lossy(&out.stdout);
        assert!(out.status.success(), "{command}: {help}");
        assert!(help.contains("--pace <PACE>"), "{command}: {help}");
        assert!(help.contains("hardware"), "{command}: {help}");
        // A pace that does not exist is a usage error naming the valid ones.
        let out = common::cli::hil(&[command, "--pace", "ludicrous"], dir.path());
        let err = common::cli::lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("default") && err.contains("hardware"),
            "{command}: {err}"
        );
    }
}
