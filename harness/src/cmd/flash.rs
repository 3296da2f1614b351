//! `hil flash`: write an image to a board, fast.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use hil::flash::{
    flash_with, BaudFailure, BaudReport, FlashError, FlashEvent, FlashInput, FlashOptions,
    FlashOutcome, DEFAULT_BAUD,
};

use super::farm::{with_board, BoardArg, FarmArgs};
use indicatif::{ProgressBar, ProgressStyle};
use miette::Result;

/// Arguments of `hil flash`.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 written or unchanged; 2 bad input (nothing written) or a failed \
flash (the message says whether flash may be half-written).

Examples:
  hil flash --port /dev/ttyUSB0 firmware.bin
  hil flash --port rfc2217://runner-7:4000 --baud 460800 firmware.elf
  hil flash --port /dev/ttyUSB0 --offset 0x300000 --force spiffs.bin
  hil flash --board labgrid:esp8266-3 --coordinator farm.lab:20408 firmware.bin")]
pub struct FlashArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port>,
    /// rfc2217://host:port, or a labgrid place (labgrid:PLACE or
    /// labgrid:TAG=VALUE,...), acquired for the command and released after it.
    #[arg(long, visible_alias = "board", value_name = "PORT")]
    port: BoardArg,
    #[command(flatten)]
    farm: FarmArgs,
    /// An ESP8266 image (.bin, written at --offset) or an ELF (converted by
    /// espflash).
    image: PathBuf,
    /// Flash offset for a .bin, e.g. 0x10000.
    #[arg(long, value_parser = parse_offset)]
    offset: Option<u32>,
    /// The baud rate to flash at: the board is connected to straight at it (the
    /// ESP8266's ROM loader measures the rate on SYNC) and the flasher stub goes
    /// up at it. When the port refuses it or the board does not answer, the
    /// connection is made at 115200 and the next lower of 921600, 460800,
    /// 230400 is tried once the stub runs; the rate used is printed, and why.
    #[arg(long, env = "HIL_FLASH_BAUD", default_value_t = DEFAULT_BAUD, value_name = "RATE")]
    baud: u32,
    /// Write the file even though it is not an ESP8266 image (raw data such as a
    /// file system); without it, such a file is refused before the board is
    /// touched.
    #[arg(long)]
    force: bool,
}

fn parse_offset(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not an offset; use e.g. 0x10000 or 65536"))
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// "921600", or "460800 (921600: the port refused it)".
fn describe_baud(baud: &BaudReport) -> String {
    let mut text = baud.used.to_string();
    if !baud.fell_back.is_empty() {
        let tried: Vec<String> = baud
            .fell_back
            .iter()
            .map(|attempt| {
                let why = match attempt.failure {
                    BaudFailure::PortRefused => "the port refused it",
                    BaudFailure::NoAnswer => "no answer at that rate",
                };
                format!("{}: {why}", attempt.baud)
            })
            .collect();
        text.push_str(&format!(" (fell back from {})", tried.join("; ")));
    }
    text
}

impl FlashArgs {
    /// Flashes, drawing a progress bar.
    pub fn run(self) -> Result<ExitCode> {
        let input = if self.force {
            FlashInput::from_file(&self.image, self.offset)?
        } else {
            match FlashInput::from_image_file(&self.image, self.offset) {
                Err(error @ (FlashError::NotAnImage { .. } | FlashError::ImageChecksum { .. })) => {
                    return Err(miette::Report::new(error).wrap_err(
                        "refused before touching the board (--force writes it as raw data)",
                    ));
                }
                other => other?,
            }
        };
        with_board(&self.port, &self.farm, false, |port, _| {
            self.write(&port, &input)
        })
    }

    fn write(&self, port: &hil::serial::PortSpec, input: &FlashInput) -> Result<ExitCode> {
        let started = Instant::now();
        let mut bar: Option<ProgressBar> = None;
        let mut on_event = |event: FlashEvent| match event {
            FlashEvent::Connected(device) => println!(
                "Connected: {} MAC {} flash {} MB crystal {} MHz",
                device.chip,
                device.mac,
                device.flash_size / (1024 * 1024),
                device.crystal_mhz
            ),
            FlashEvent::Baud(baud) => println!("Baud rate: {}", describe_baud(&baud)),
            FlashEvent::Compared {
                region,
                changed,
                probes,
            } => println!(
                "Compared {:#08x}..{:#08x} with flash ({probes} MD5 checks): {} differ",
                region.offset,
                region.end(),
                kib(u64::from(changed))
            ),
            FlashEvent::AlreadyFlashed => println!("Flash already holds this image: skipped"),
            FlashEvent::Writing { bytes, compressed } => {
                let b = ProgressBar::new(compressed);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {bytes}/{total_bytes} {elapsed_precise}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_message(format!("Writing {} as {}", kib(bytes), kib(compressed)));
                bar = Some(b);
            }
            FlashEvent::Progress { sent } => {
                if let Some(b) = &bar {
                    b.set_position(sent);
                }
            }
            FlashEvent::Verifying => {
                if let Some(b) = bar.take() {
                    b.finish();
                }
                println!("Verifying (MD5 from the flasher stub)...");
            }
            FlashEvent::Rewriting { region } => println!(
                "Flash {:#08x}..{:#08x} does not match: writing it again",
                region.offset,
                region.end()
            ),
            FlashEvent::Verified { region, md5 } => println!(
                "Verified {:#08x}..{:#08x}: md5 {md5}",
                region.offset,
                region.end()
            ),
            _ => {}
        };
        let options = FlashOptions::default().baud(self.baud);
        let report = flash_with(port, input, &options, &mut on_event)?;
        let verdict = match report.outcome {
            FlashOutcome::Skipped => "unchanged",
            FlashOutcome::Written { verified: true } => "written and verified",
            FlashOutcome::Written { verified: false } => "written (not read back)",
        };
        println!(
            "Done: {verdict} in {:.2} s at {} baud; {} of {} written ({} compressed); \
             {} bytes sent, {} received",
            started.elapsed().as_secs_f64(),
            report.baud.used,
            kib(report.written_bytes),
            kib(report.image_bytes),
            kib(report.compressed_bytes),
            report.wire.sent,
            report.wire.received
        );
        Ok(ExitCode::SUCCESS)
    }
}
