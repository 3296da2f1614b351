//! `hil vboard bench`: flashing figures against one virtual board, side by side:
//! `hil flash` (espflash 2.1: uncompressed 1 KB blocks at 115200, then MD5 from the
//! stub) and esptool (its stub, compressed 16 KB blocks, MD5-verified), each on a
//! freshly erased region and again with the image unchanged.
//!
//! Bytes on the wire are counted by the board, per TCP connection, Telnet framing
//! included, so both tools are measured the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::flash::{flash, FlashInput};
use hil::image::{ImageV1, Segment};
use hil::serial::PortSpec;
use hil::timeline::{BoardEvent, EventKind, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, SilentFirmware, VirtualBoard};
use miette::{miette, IntoDiagnostic, Result, WrapErr};

/// Arguments of `hil vboard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image size in KiB.
    #[arg(long, default_value_t = 1024)]
    kib: usize,
    /// The Python with esptool installed (default: ./.venv/bin/python, as ci/setup
    /// makes it).
    #[arg(long, env = "HIL_PYTHON", value_name = "PYTHON")]
    python: Option<PathBuf>,
}

/// A firmware-like image: a valid v1 header and segments, then code-like words
/// drawn from a small vocabulary, so it compresses about as much as real firmware.
fn image(len: usize) -> Vec<u8> {
    let mut seed = 0x2545_F491u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let vocabulary: Vec<u32> = (0..512).map(|_| next()).collect();
    let header = ImageV1::new(
        0x4010_0004,
        vec![Segment::new(0x4010_0000, vec![0x55; 2048])],
    )
    .to_bytes();
    let mut out = header;
    while out.len() < len {
        let word = if next() % 5 == 0 {
            next()
        } else {
            vocabulary[(next() % 512) as usize]
        };
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Row {
    what: &'static str,
    to_board: u64,
    from_board: u64,
    seconds: f64,
}

fn python(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let candidate = explicit.unwrap_or_else(|| PathBuf::from(".venv/bin/python"));
    let ok = std::process::Command::new(&candidate)
        .args(["-c", "import esptool"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Ok(candidate)
    } else {
        Err(miette!(
            code = "hil::bench::no_esptool",
            help = "run ci/setup (it installs esptool into .venv), or pass --python",
            "esptool is not importable with {}",
            candidate.display()
        ))
    }
}

async fn esptool(python: &Path, url: &str, args: &[&str]) -> Result<()> {
    let output = tokio::process::Command::new(python)
        .args(["-m", "esptool", "--port", url, "--chip", "esp8266"])
        .args(args)
        .output()
        .await
        .into_diagnostic()?;
    if !output.status.success() {
        return Err(miette!(
            "esptool {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    Ok(())
}

/// Sums what the board counted on the connections closed since `from`.
async fn wire_since(timeline: &Timeline, from: hil::timeline::Cursor) -> (u64, u64) {
    // The board notes the numbers when it sees the close; wait for that note.
    let is_close = |e: &hil::timeline::Event| {
        matches!(
            &e.kind,
            EventKind::Board {
                what: BoardEvent::ClientDisconnected { .. }
            }
        )
    };
    let _ = timeline
        .wait_for(from, Duration::from_secs(5), is_close)
        .await;
    let mut totals = (0, 0);
    for event in timeline.since(from) {
        if let EventKind::Board {
            what: BoardEvent::ClientDisconnected { rx, tx },
        } = event.kind
        {
            totals.0 += rx;
            totals.1 += tx;
        }
    }
    totals
}

impl BenchArgs {
    /// Runs the benchmark and prints the table.
    pub fn run(self) -> Result<ExitCode> {
        let python = python(self.python)?;
        let dir = tempfile_dir()?;
        let data = image(self.kib * 1024);
        let path = dir.join("bench.bin");
        std::fs::write(&path, &data).into_diagnostic()?;
        let path_text = path.display().to_string();
        let size = data.len().to_string();
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let rows = runtime.block_on(async {
            let timeline = Timeline::new();
            let options = BoardOptions::new(BoardIndex::new(1)?, dir.join("board.flash"))
                .timeline(timeline.clone())
                .firmware(Arc::new(SilentFirmware));
            let board = VirtualBoard::start(options).await?;
            let url = board.url().to_string();
            let spec: PortSpec = url.parse()?;
            let mut rows = Vec::new();

            for (what, unchanged) in [
                ("hil flash (espflash, 1 KB blocks, verify)", false),
                ("hil flash, image unchanged (skip)", true),
            ] {
                if !unchanged {
                    esptool(
                        &python,
                        &url,
                        &["erase_region", "0", &format!("{}", round_up(data.len()))],
                    )
                    .await?;
                }
                let from = timeline.cursor();
                let started = Instant::now();
                let input = FlashInput::Bin {
                    data: data.clone(),
                    offset: 0,
                };
                let spec = spec.clone();
                tokio::task::spawn_blocking(move || flash(&spec, &input, &mut |_| {}))
                    .await
                    .into_diagnostic()??;
                let seconds = started.elapsed().as_secs_f64();
                let (to_board, from_board) = wire_since(&timeline, from).await;
                rows.push(Row {
                    what,
                    to_board,
                    from_board,
                    seconds,
                });
            }
            for (what, unchanged) in [
                ("esptool write_flash (stub, compressed, MD5)", false),
                ("esptool write_flash, image unchanged", true),
            ] {
                if !unchanged {
                    esptool(
                        &python,
                        &url,
                        &["erase_region", "0", &format!("{}", round_up(data.len()))],
                    )
                    .await?;
                }
                let from = timeline.cursor();
                let started = Instant::now();
                esptool(&python, &url, &["write_flash", "0", &path_text]).await?;
                let seconds = started.elapsed().as_secs_f64();
                let (to_board, from_board) = wire_since(&timeline, from).await;
                rows.push(Row {
                    what,
                    to_board,
                    from_board,
                    seconds,
                });
            }
            // Sanity: what the board holds is the image.
            let back = dir.join("back.bin");
            esptool(
                &python,
                &url,
                &["read_flash", "0", &size, &back.display().to_string()],
            )
            .await?;
            if std::fs::read(&back).into_diagnostic()? != data {
                return Err(miette!(
                    "the board's flash does not hold the image after the runs"
                ));
            }
            board.stop().await?;
            Ok::<_, miette::Report>(rows)
        })?;

        println!(
            "Flashing a {} KiB image to one virtual board (rfc2217 on loopback):",
            self.kib
        );
        println!(
            "{:<46} {:>14} {:>11} {:>8} {:>16}",
            "run", "bytes to board", "bytes back", "wall s", "s at 115200 8N1"
        );
        for row in &rows {
            // The virtual board does not pace bytes at the baud rate; this column is
            // what the same traffic needs on a real 115200 8N1 line (10 bits a byte).
            let at_115200 = row.to_board.max(row.from_board) as f64 * 10.0 / 115_200.0;
            println!(
                "{:<46} {:>14} {:>11} {:>8.2} {:>16.1}",
                row.what, row.to_board, row.from_board, row.seconds, at_115200
            );
        }
        println!("Wall times are loopback; esptool's include pyserial renegotiating the RFC 2217 port on every timeout change.");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(ExitCode::SUCCESS)
    }
}

fn round_up(len: usize) -> usize {
    len.div_ceil(4096) * 4096
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hil-vboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
