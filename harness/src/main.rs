//! `hil`: the command-line face of the harness. Each verb lives in `cmd/<verb>.rs`
//! as a clap struct plus `run`; terminal concerns (colour, tables, hints) stay here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Hardware-in-the-loop tests for ESP8266 firmware that talks MQTT over TLS.
///
/// The harness flashes a board (real, remote over RFC 2217, or virtual), stands up a
/// lab that impersonates the device's broker with deliberately broken certificates,
/// and checks what the device prints and does on the network.
#[derive(Debug, Parser)]
#[command(name = "hil", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The certificate catalogue: list, generate and benchmark profiles.
    #[command(subcommand)]
    Pki(cmd::pki::PkiCommand),
    /// The lab on its own: TLS front, MQTT broker, NTP and DNS, events streamed live.
    Lab(cmd::lab::LabArgs),
    /// Log profiles: check what a profile makes of your firmware's serial output
    /// and which steps it cannot judge.
    #[command(subcommand)]
    Logprofile(cmd::logprofile::LogprofileCommand),
    /// Virtual firmware images: build, inspect and list variants (and, with virtual
    /// boards built in, benchmark the twin).
    #[command(subcommand)]
    Vfirmware(cmd::vfirmware::VfirmwareCommand),
    /// Print the Gherkin step reference (Markdown): every phrase features may use.
    Steps(cmd::steps::StepsArgs),
    /// Run Gherkin scenarios against boards and the lab (live progress, summary,
    /// JUnit, JSON, HTML report, per-scenario artifacts). Exit 0 passed, 1 failed,
    /// 2 bad input or infrastructure.
    Run(Box<cmd::run::RunArgs>),
    /// The main job: the shipped scenarios against the reference firmware, then
    /// against every firmware variant, with the kill matrix and the report.
    #[cfg(feature = "virtual")]
    Demo(cmd::demo::DemoArgs),
    /// A virtual ESP8266 board on a loopback RFC 2217 port (`hil vboard --listen
    /// 127.0.0.1:PORT --flash FILE`), and its flashing benchmark (`hil vboard bench`).
    #[cfg(feature = "virtual")]
    Vboard(cmd::vboard::VboardArgs),
    /// Write an image to a board: espflash 2.1 connects and uploads its stub, then
    /// a raised baud rate, compressed writes of only the sectors that changed,
    /// and MD5 verification.
    ///
    /// espflash resets the board into its ROM loader, identifies the chip and
    /// uploads its flasher stub. Then the baud rate goes up (--baud, stepping down
    /// when the port or the link cannot hold it), flash is compared with the image
    /// by MD5 so that only the 4 KB sectors that differ are written, they go
    /// zlib-compressed, everything written is verified by MD5 (ELF inputs too), a
    /// sector that does not match is written once more, and the board is reset
    /// into its firmware. A file that is not an ESP8266 image is refused before the
    /// board is touched unless --force is given.
    Flash(cmd::flash::FlashArgs),
    /// Print a board's serial output as timestamped lines (Ctrl-C leaves).
    Monitor(cmd::monitor::MonitorArgs),
    /// Reset a board into its firmware through DTR/RTS.
    Reset(cmd::reset::ResetArgs),
    /// Check what a CI runner needs (board port, privileged ports, firewall, tools)
    /// and print the fix for every problem. Exit 0 fine, 1 a check failed, 2 bad input.
    Doctor(cmd::doctor::DoctorArgs),
}

/// Restores the default SIGPIPE action, as command-line tools expect: `hil pki
/// list | head` then ends quietly instead of failing to write to a closed pipe.
#[cfg(unix)]
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; resetting a
    // signal disposition to its default has no other effect on the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    // Problems are listed one `file:line: message` per line; wrapping would break
    // them where editors and CI logs look for them.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pki(command) => command.run(),
        Command::Run(args) => args.run(),
        #[cfg(feature = "virtual")]
        Command::Demo(args) => args.run(),
        Command::Steps(args) => args.run(),
        Command::Vfirmware(command) => command.run(),
        #[cfg(feature = "virtual")]
        Command::Vboard(args) => args.run(),
        Command::Lab(args) => args.run(),
        Command::Logprofile(command) => command.run(),
        Command::Flash(args) => args.run(),
        Command::Monitor(args) => args.run(),
        Command::Reset(args) => args.run(),
        Command::Doctor(args) => args.run(),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            // Every error that reaches here is bad input or broken infrastructure.
            ExitCode::from(cmd::EXIT_USAGE)
        }
    }
}
