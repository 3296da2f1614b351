//! `hil vboard`: run a virtual ESP8266 board on a loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use miette::{IntoDiagnostic, Result};

/// Arguments of `hil vboard`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VboardArgs {
    #[command(subcommand)]
    command: Option<VboardCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Subcommands of `hil vboard`.
#[derive(Debug, Subcommand)]
pub enum VboardCommand {
    /// `hil flash` against esptool 4.8.1 on a virtual board at line rate: a
    /// synthetic 1 MiB image and the reference sketch, fresh, one sector changed
    /// and unchanged; prints wall times, bytes on the wire and the targets.
    Bench(super::vboard_bench::BenchArgs),
}

/// Serving one board.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The board's flash: a 4 MB file, created erased (0xFF) when missing.
    #[arg(long, default_value = "vboard.flash", value_name = "FILE")]
    flash: PathBuf,
    /// Board index 1..=254 (sets the MAC, and the address its firmware uses).
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Deliver bytes at the UART's line rate (10 bits a byte at the current baud,
    /// both directions), so flashing takes as long as on a real board.
    #[arg(long)]
    line_rate: bool,
    /// How fast the board runs: `default` as fast as this machine allows,
    /// `hardware` at a real ESP8266's pace (line rate both ways, and the twin
    /// takes an 80 MHz chip's boot, Wi-Fi, SNTP and TLS handshake times).
    #[arg(long, value_enum, default_value_t = super::run::PaceArg::Default, value_name = "PACE")]
    pace: super::run::PaceArg,
    /// Run the firmware twin for images that carry a descriptor (`hil vfirmware
    /// build`); without it the board runs nothing after the ROM's lines.
    #[arg(long)]
    twin: bool,
    /// The DNS server the twin's "DHCP" hands out (ADDR:PORT).
    #[arg(long, value_name = "ADDR:PORT", requires = "twin")]
    dns: Option<SocketAddr>,
    /// The NTP server the twin's "DHCP" hands out (ADDR:PORT).
    #[arg(long, value_name = "ADDR:PORT", requires = "twin")]
    ntp: Option<SocketAddr>,
    /// Join a real network: at every boot the board asks for a DHCP lease on this
    /// interface as its efuse MAC, takes the address and the default route, and
    /// the twin uses the lease's DNS and NTP (Linux, root or CAP_NET_ADMIN).
    #[arg(long, value_name = "IFACE", requires = "twin")]
    wifi: Option<String>,
    /// Misbehave as real boards and cables now and then do (repeatable):
    /// `brown-out-after:DURATION` (the chip resets itself that long after each
    /// firmware start, a hard reset whose ROM banner a console at 115200 reads
    /// as garbage), `refuse-baud-above:BAUD`, `garble-above:BAUD`,
    /// `stub-hangs-at-block:N`.
    #[arg(long, value_name = "FAULT", value_parser = parse_fault)]
    fault: Vec<hil::vboard::Fault>,
}

/// A `--fault` value.
fn parse_fault(text: &str) -> std::result::Result<hil::vboard::Fault, String> {
    use hil::vboard::Fault;
    let (kind, arg) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: a fault is KIND:VALUE, e.g. brown-out-after:3s"))?;
    let number = |what: &str| {
        arg.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{text}`: {what} must be a whole number"))
    };
    match kind.trim() {
        "brown-out-after" => {
            let d = hil::duration::parse_duration(arg.trim()).map_err(|e| format!("`{text}`: {e}"))?;
            if d.is_negative() || d.is_zero() {
                return Err(format!("`{text}`: the delay must be positive"));
            }
            Ok(Fault::BrownOutAfter(std::time::Duration::from_millis(
                d.whole_milliseconds().min(u64::MAX as i128) as u64,
            )))
        }
        "refuse-baud-above" => number("the baud rate").map(Fault::RefuseBaudAbove),
        "garble-above" => number("the baud rate").map(Fault::GarbleAbove),
        "stub-hangs-at-block" => number("the block").map(Fault::StubHangsAtBlock),
        other => Err(format!(
            "unknown fault `{other}`: brown-out-after, refuse-baud-above, garble-above or stub-hangs-at-block"
        )),
    }
}

impl VboardArgs {
    /// Runs the board until Ctrl-C, or the benchmark.
    pub fn run(self) -> Result<ExitCode> {
        match self.command {
            Some(VboardCommand::Bench(args)) => args.run(),
            None => self.serve.run(),
        }
    }
}

impl ServeArgs {
    fn run(self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        runtime.block_on(async move {
            let mut stop = super::stop::StopSignals::catch()?;
            let index = BoardIndex::new(self.index)?;
            let pace = hil_contract::pace::Pace::from(self.pace);
            let mut options = BoardOptions::new(index, &self.flash)
                .listen(self.listen)
                .line_rate(self.line_rate || pace == hil_contract::pace::Pace::Hardware);
            for fault in &self.fault {
                options = options.fault(*fault);
            }
            if self.twin {
                options = options.firmware(std::sync::Arc::new(
                    hil::vfirmware::TwinRunner::new(hil::vfirmware::TwinNetwork {
                        dns: self.dns,
                        ntp: self.ntp,
                        access_point: None,
                        wifi: self.wifi.clone(),
                    })
                    .with_pace(pace),
                ));
            }
            let mut board = VirtualBoard::start(options).await?;
            println!(
                "virtual board {} ({}) on {}  flash {}",
                index.get(),
                hil::vboard::format_mac(index.mac()),
                board.url(),
                self.flash.display()
            );
            println!("Ctrl-C stops it.");
            tokio::select! {
                _ = stop.next() => {}
                result = board.wait() => result?,
            }
            board.stop().await?;
            Ok(ExitCode::SUCCESS)
        })
    }
}
