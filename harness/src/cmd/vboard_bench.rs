//! `hil vboard bench`: `hil flash` against esptool 4.8.1 on the same virtual
//! board with its UART line rate modelled, so wall times are what a real board's
//! wire takes.
//!
//! Two images: a synthetic one (firmware-like words, 1 MiB by default) and the
//! reference sketch as a real toolchain built it. Three cases each: flash erased
//! (fresh), flash holding the image but for one 4 KB sector (a new release), and
//! flash holding the image (unchanged). Each tool runs on a board restarted with
//! its flash file prepared for the case.
//!
//! esptool runs twice over: as people run it, on a local serial port (here a
//! pseudo-terminal bridged to the board; the bridge resets the board as esptool's
//! default reset does and passes baud changes on), and over RFC 2217 through
//! pyserial's client, which renegotiates the port on every timeout change and is
//! much slower. Bytes on the wire are counted by the board, per connection, Telnet
//! framing included, so all are measured the same way.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::flash::{flash_with, FlashInput, FlashOptions, FlashOutcome, FlashReport, DEFAULT_BAUD};
use hil::image::{ImageV1, Segment};
use hil::serial::PortSpec;
use hil::timeline::{BoardEvent, Cursor, EventKind, Timeline};
use hil::vboard::{BoardIndex, BoardOptions, SilentFirmware, VirtualBoard, FLASH_SIZE};
use miette::{miette, IntoDiagnostic, Result, WrapErr};
use serialport::SerialPort;

/// Arguments of `hil vboard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the synthetic image in KiB.
    #[arg(long, default_value_t = 1024)]
    kib: usize,
    /// A real image to flash too (default: the reference sketch in
    /// fixtures/firmware, when run from the repository).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The rate both tools are asked for.
    #[arg(long, default_value_t = DEFAULT_BAUD)]
    baud: u32,
    /// The Python with esptool installed (default: ./.venv/bin/python, as ci/setup
    /// makes it).
    #[arg(long, env = "HIL_PYTHON", value_name = "PYTHON")]
    python: Option<PathBuf>,
}

const REFERENCE: &str = "fixtures/firmware/reference-nodemcuv2.bin";

/// A firmware-like image: a valid v1 header and segments, then code-like words
/// drawn from a small vocabulary, so it compresses about as much as real firmware.
fn synthetic(len: usize) -> Vec<u8> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Fresh,
    OneSector,
    Unchanged,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Fresh => "fresh (flash erased)",
            Case::OneSector => "one 4 KB sector differs",
            Case::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Hil,
    EsptoolTty,
    EsptoolRfc2217,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Hil => "hil flash",
            Tool::EsptoolTty => "esptool, local tty",
            Tool::EsptoolRfc2217 => "esptool, RFC 2217",
        }
    }
}

struct Run {
    image: String,
    case: Case,
    tool: Tool,
    seconds: f64,
    to_board: u64,
    from_board: u64,
    /// hil only: what it did.
    report: Option<FlashReport>,
    /// esptool on a tty: time until its first byte (Python starting).
    startup: Option<f64>,
}

impl Run {
    fn bytes(&self) -> u64 {
        self.to_board + self.from_board
    }
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

/// Sums what the board counted on the connections closed since `from`.
async fn wire_since(timeline: &Timeline, from: Cursor) -> (u64, u64) {
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

/// esptool on a local serial port: a pseudo-terminal whose other end is bridged
/// to the board. The bridge does what esptool's reset would over DTR/RTS (a pty
/// has no modem lines), passes bytes both ways as they come, and follows the
/// pty's baud rate with RFC 2217 SET-BAUDRATE. Returns (wall seconds, seconds
/// until esptool's first byte, esptool's output).
fn esptool_on_a_tty(python: &Path, url: &str, args: &[String]) -> Result<(f64, f64, String)> {
    let (mut master, slave) = serialport::TTYPort::pair().into_diagnostic()?;
    let slave_name = slave
        .name()
        .ok_or_else(|| miette!("the pseudo-terminal has no name"))?;
    let spec: PortSpec = url.parse()?;
    let mut link = spec.open(115_200)?;
    let started = Instant::now();
    // esptool's classic reset into the ROM loader: EN low (RTS), then GPIO0 low
    // (DTR) while EN rises, then GPIO0 released.
    link.write_data_terminal_ready(false).into_diagnostic()?;
    link.write_request_to_send(true).into_diagnostic()?;
    std::thread::sleep(Duration::from_millis(100));
    link.write_data_terminal_ready(true).into_diagnostic()?;
    link.write_request_to_send(false).into_diagnostic()?;
    std::thread::sleep(Duration::from_millis(50));
    link.write_data_terminal_ready(false).into_diagnostic()?;
    let mut child = std::process::Command::new(python)
        .args(["-m", "esptool", "--port", &slave_name, "--chip", "esp8266"])
        .args(["--before", "no_reset", "--after", "no_reset"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .into_diagnostic()?;
    let mut baud = 115_200;
    let mut first_byte = None;
    let mut buf = vec![0u8; 64 * 1024];
    let status = loop {
        let mut moved = false;
        let waiting = master.bytes_to_read().unwrap_or(0) as usize;
        if waiting > 0 {
            let n = master
                .read(&mut buf[..waiting.min(64 * 1024)])
                .into_diagnostic()?;
            // Bytes written before a rate change go at the old rate.
            link.write_all(&buf[..n]).into_diagnostic()?;
            first_byte.get_or_insert_with(|| started.elapsed());
            moved = true;
        }
        if let Ok(rate) = slave.baud_rate() {
            if rate != baud && rate != 0 {
                link.set_baud_rate(rate).into_diagnostic()?;
                baud = rate;
            }
        }
        let arrived = link.bytes_to_read().unwrap_or(0) as usize;
        if arrived > 0 {
            let n = link
                .read(&mut buf[..arrived.min(64 * 1024)])
                .into_diagnostic()?;
            master.write_all(&buf[..n]).into_diagnostic()?;
            moved = true;
        }
        if let Some(status) = child.try_wait().into_diagnostic()? {
            break status;
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    // esptool's hard reset after writing: EN pulsed through RTS.
    hil::serial::hard_reset(link.as_mut()).into_diagnostic()?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(miette!("esptool on a pty failed:\n{out}"));
    }
    let startup = first_byte.map(|d| d.as_secs_f64()).unwrap_or(0.0);
    Ok((seconds, startup, out))
}

async fn esptool_rfc2217(python: &Path, url: &str, args: &[String]) -> Result<f64> {
    let started = Instant::now();
    let output = tokio::process::Command::new(python)
        .args(["-m", "esptool", "--port", url, "--chip", "esp8266"])
        .args(args)
        .output()
        .await
        .into_diagnostic()?;
    if !output.status.success() {
        return Err(miette!(
            "esptool over RFC 2217 failed:\n{}",
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// 4 MB of flash: erased, with `image` at 0 when given.
fn flash_file(path: &Path, image: Option<&[u8]>) -> Result<()> {
    let mut flash = vec![0xFFu8; FLASH_SIZE];
    if let Some(image) = image {
        flash[..image.len()].copy_from_slice(image);
    }
    std::fs::write(path, flash)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing {}", path.display()))
}

struct Bench {
    python: PathBuf,
    dir: PathBuf,
    baud: u32,
    timeline: Timeline,
}

impl Bench {
    async fn run(&self, name: &str, original: &[u8], case: Case, tool: Tool) -> Result<Run> {
        let flash_path = self.dir.join("board.flash");
        let input = match case {
            Case::OneSector => {
                let mut release = original.to_vec();
                // A sector in the middle of the image.
                let at = (original.len() / 2) & !0xFFF;
                release[at + 100] ^= 0x5A;
                release
            }
            Case::Fresh | Case::Unchanged => original.to_vec(),
        };
        flash_file(&flash_path, (case != Case::Fresh).then_some(original))?;
        let image_path = self.dir.join("input.bin");
        std::fs::write(&image_path, &input).into_diagnostic()?;
        let options = BoardOptions::new(BoardIndex::new(1)?, &flash_path)
            .timeline(self.timeline.clone())
            .firmware(Arc::new(SilentFirmware))
            .line_rate(true);
        let board = VirtualBoard::start(options).await?;
        let url = board.url().to_string();
        let from = self.timeline.cursor();
        let esptool_args = vec![
            "--baud".to_string(),
            self.baud.to_string(),
            "write_flash".into(),
            "-z".into(),
            "0".into(),
            image_path.display().to_string(),
        ];
        let mut report = None;
        let mut startup = None;
        let seconds = match tool {
            Tool::Hil => {
                let spec: PortSpec = url.parse()?;
                let options = FlashOptions::default().baud(self.baud);
                let flash_input = FlashInput::Bin {
                    data: input.clone(),
                    offset: 0,
                };
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    flash_with(&spec, &flash_input, &options, &mut |_| {})
                })
                .await
                .into_diagnostic()??;
                let seconds = started.elapsed().as_secs_f64();
                report = Some(result);
                seconds
            }
            Tool::EsptoolTty => {
                let python = self.python.clone();
                let (seconds, first, _) = tokio::task::spawn_blocking(move || {
                    esptool_on_a_tty(&python, &url, &esptool_args)
                })
                .await
                .into_diagnostic()??;
                startup = Some(first);
                seconds
            }
            Tool::EsptoolRfc2217 => esptool_rfc2217(&self.python, &url, &esptool_args).await?,
        };
        let (to_board, from_board) = wire_since(&self.timeline, from).await;
        board.stop().await?;
        // Every run must leave the input in flash, or its figures mean nothing.
        let flash = std::fs::read(&flash_path).into_diagnostic()?;
        if flash[..input.len()] != input[..] {
            return Err(miette!(
                "{} did not leave the image in flash ({name}, {})",
                tool.name(),
                case.name()
            ));
        }
        Ok(Run {
            image: name.to_string(),
            case,
            tool,
            seconds,
            to_board,
            from_board,
            report,
            startup,
        })
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn find<'a>(runs: &'a [Run], image: &str, case: Case, tool: Tool) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.image == image && r.case == case && r.tool == tool)
}

fn print_targets(runs: &[Run], image: &str) {
    println!(
        "Targets for {image}, against esptool on a local tty (against esptool over RFC 2217):"
    );
    let ratio = |case: Case, tool: Tool, f: &dyn Fn(&Run) -> f64| {
        let hil = find(runs, image, case, Tool::Hil)?;
        let peer = find(runs, image, case, tool)?;
        Some(f(hil) / f(peer))
    };
    let wall = |r: &Run| r.seconds;
    let bytes = |r: &Run| r.bytes() as f64;
    let rfc = |case: Case, f: &dyn Fn(&Run) -> f64| {
        ratio(case, Tool::EsptoolRfc2217, f)
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_else(|| "-".into())
    };
    if let Some(x) = ratio(Case::Fresh, Tool::EsptoolTty, &wall) {
        println!(
            "  fresh, wall time <= 0.8x:           {x:.2}x ({}) {}",
            rfc(Case::Fresh, &wall),
            verdict(x <= 0.8)
        );
    }
    if let Some(x) = ratio(Case::Fresh, Tool::EsptoolTty, &bytes) {
        println!(
            "  fresh, bytes <= esptool's:          {x:.3}x ({}) {}",
            rfc(Case::Fresh, &bytes),
            verdict(x <= 1.0)
        );
    }
    if let Some(x) = ratio(Case::OneSector, Tool::EsptoolTty, &wall) {
        println!(
            "  one sector, wall time <= 0.1x:      {x:.3}x ({}) {}",
            rfc(Case::OneSector, &wall),
            verdict(x <= 0.1)
        );
    }
    if let Some(x) = ratio(Case::Unchanged, Tool::EsptoolTty, &bytes) {
        println!(
            "  unchanged, bytes <= 1% of esptool's: {:.2}% {}",
            x * 100.0,
            verdict(x <= 0.01)
        );
        let hil = find(runs, image, Case::Unchanged, Tool::Hil);
        let peer = find(runs, image, Case::Unchanged, Tool::EsptoolTty);
        if let (Some(Some(report)), Some(peer)) = (hil.map(|h| &h.report), peer) {
            let after = (report.wire.sent + report.wire.received)
                - (report.connect_wire.sent + report.connect_wire.received);
            println!(
                "    of which after the stub runs:      {} bytes, {:.3}% of esptool's",
                after,
                after as f64 * 100.0 / peer.bytes() as f64
            );
        }
    }
}

impl BenchArgs {
    /// Runs the benchmark and prints the table.
    pub fn run(self) -> Result<ExitCode> {
        let python = python(self.python)?;
        let dir = tempfile_dir()?;
        let mut images = vec![(
            format!("synthetic, {} KiB", self.kib),
            synthetic(self.kib * 1024),
        )];
        let real = self.image.clone().or_else(|| {
            Path::new(REFERENCE)
                .exists()
                .then(|| PathBuf::from(REFERENCE))
        });
        if let Some(path) = real {
            let data = std::fs::read(&path)
                .into_diagnostic()
                .wrap_err_with(|| format!("reading {}", path.display()))?;
            let name = path
                .file_stem()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            images.push((format!("{name}, {} KB", data.len() / 1000), data));
        }
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let bench = Bench {
            python,
            dir: dir.clone(),
            baud: self.baud,
            timeline: Timeline::new(),
        };
        let runs = runtime.block_on(async {
            let mut runs = Vec::new();
            for (name, data) in &images {
                for case in [Case::Fresh, Case::OneSector, Case::Unchanged] {
                    let mut tools = vec![Tool::Hil, Tool::EsptoolTty];
                    // Over RFC 2217 esptool takes about as long whatever flash
                    // holds (it rewrites everything): once for the wall-time cases.
                    if case != Case::Unchanged {
                        tools.push(Tool::EsptoolRfc2217);
                    }
                    for tool in tools {
                        eprintln!("{name}: {}, {}...", case.name(), tool.name());
                        runs.push(bench.run(name, data, case, tool).await?);
                    }
                }
            }
            Ok::<_, miette::Report>(runs)
        })?;

        println!(
            "Flashing one virtual board with its UART line rate modelled (10 bits a byte at \
             each side's rate), both tools asked for {} baud:",
            self.baud
        );
        println!(
            "{:<32} {:<24} {:<19} {:>7} {:>14} {:>10}  what hil did",
            "image", "case", "tool", "wall s", "bytes to board", "bytes back"
        );
        for run in &runs {
            let what = match (&run.report, run.startup) {
                (Some(r), _) => {
                    let outcome = match r.outcome {
                        FlashOutcome::Skipped => "skipped".to_string(),
                        FlashOutcome::Written { .. } => format!(
                            "wrote {} KB as {} KB",
                            r.written_bytes / 1024,
                            r.compressed_bytes / 1024
                        ),
                    };
                    format!(
                        "{outcome}, {} MD5 checks, at {} baud",
                        r.probes, r.baud.used
                    )
                }
                (None, Some(startup)) => format!("(esptool's first byte after {startup:.2} s)"),
                (None, None) => String::new(),
            };
            println!(
                "{:<32} {:<24} {:<19} {:>7.2} {:>14} {:>10}  {what}",
                run.image,
                run.case.name(),
                run.tool.name(),
                run.seconds,
                run.to_board,
                run.from_board
            );
        }
        println!();
        for (name, _) in &images {
            print_targets(&runs, name);
        }
        println!();
        println!(
            "esptool's wall times include starting Python (its first byte's time); over RFC 2217 \
             pyserial renegotiates the port on every timeout change esptool makes (~0.1 s each)."
        );
        println!(
            "Not modelled: flash erase and program times and the stub's hashing time (both \
             tools wait for them alike), and USB latency beyond the board's millisecond timer."
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(ExitCode::SUCCESS)
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hil-vboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
