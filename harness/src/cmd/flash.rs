//! `hil flash`: write an image to a board through espflash.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use hil::flash::{flash, FlashEvent, FlashInput, FlashOutcome};
use hil::serial::PortSpec;
use indicatif::{ProgressBar, ProgressStyle};
use miette::Result;

/// Arguments of `hil flash`.
#[derive(Debug, Args)]
pub struct FlashArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port> or
    /// rfc2217://host:port.
    #[arg(long, value_name = "PORT")]
    port: PortSpec,
    /// A raw image (.bin, written at --offset) or an ELF (converted by espflash).
    image: PathBuf,
    /// Flash offset for a .bin, e.g. 0x10000.
    #[arg(long, value_parser = parse_offset)]
    offset: Option<u32>,
}

fn parse_offset(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not an offset; use e.g. 0x10000 or 65536"))
}

impl FlashArgs {
    /// Flashes, drawing a progress bar.
    pub fn run(self) -> Result<ExitCode> {
        let input = FlashInput::from_file(&self.image, self.offset)?;
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
            FlashEvent::AlreadyFlashed => println!("Flash already holds this image: skipped"),
            FlashEvent::Writing { addr, blocks } => {
                let b = ProgressBar::new(blocks as u64);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} KB {elapsed_precise}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_message(format!("Writing {addr:#08x}"));
                bar = Some(b);
            }
            FlashEvent::Block { done } => {
                if let Some(b) = &bar {
                    b.set_position(done as u64);
                }
            }
            FlashEvent::Verifying => {
                if let Some(b) = bar.take() {
                    b.finish();
                }
                println!("Verifying (MD5 from the flasher stub)...");
            }
            FlashEvent::Verified { md5 } => println!("Verified: md5 {md5}"),
        };
        let report = flash(&self.port, &input, &mut on_event)?;
        let verdict = match report.outcome {
            FlashOutcome::Skipped => "unchanged",
            FlashOutcome::Written { verified: true } => "written and verified",
            FlashOutcome::Written { verified: false } => "written (ELF: not read back)",
        };
        println!(
            "Done: {verdict} in {:.2} s; {} bytes sent, {} received",
            started.elapsed().as_secs_f64(),
            report.wire.sent,
            report.wire.received
        );
        Ok(ExitCode::SUCCESS)
    }
}
