//! Flashing an ESP8266 over any serial link, faster than esptool.
//!
//! espflash 2.1 (the last release that supports the ESP8266) does what it does
//! well: it resets the board into its ROM loader, identifies the chip, uploads
//! its flasher stub and converts ELF files. For the ESP8266 it then writes
//! uncompressed 1 KB blocks at 115200 baud; this module takes over the
//! stub instead ([`stub_client`]) and
//!
//! 1. connects straight at the flashing rate (921600 unless told otherwise):
//!    the ROM loader measures the rate on SYNC, so espflash's stub goes up at
//!    it too; when the port refuses it or the board does not answer, it
//!    connects at 115200 and raises the rate with CHANGE_BAUDRATE, stepping down
//!    through the standard rates when the port refuses one or the link garbles
//!    it ([`BaudReport`] says which rate was used and why);
//! 2. compares flash with the image by MD5, coarse to fine, and writes only the
//!    4 KB sectors that differ (see `plan.rs`);
//! 3. writes them zlib-compressed (FLASH_DEFL_*), as esptool does;
//! 4. verifies every region written by MD5 (ELF inputs included), rewrites a
//!    sector that does not match once, and fails naming it if it still does not.
//!
//! Progress is reported as [`FlashEvent`] values; drawing it is the caller's job.
//!
//! ```no_run
//! use hil::flash::{flash_with, FlashInput, FlashOptions};
//!
//! let port = "rfc2217://127.0.0.1:4000".parse()?;
//! let input = FlashInput::from_image_file("app.bin".as_ref(), None)?;
//! let report = flash_with(&port, &input, &FlashOptions::default(), &mut |_| {})?;
//! println!("{} bytes sent at {} baud", report.wire.sent, report.baud.used);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod baud;
mod counting;
mod input;
mod plan;
mod stub_client;

use std::fmt;
use std::io::Write;

use espflash::flasher::Flasher;
use espflash::interface::Interface;
use flate2::write::ZlibEncoder;
use md5::{Digest, Md5};
use serialport::{SerialPort, UsbPortInfo};

use crate::image::ImageError;
use crate::serial::{PortSpec, SerialError};
use stub_client::{write_time, StubClient, StubFailure};

pub use baud::{BaudAttempt, BaudFailure, BaudReport, DEFAULT_BAUD, LOADER_BAUD};
pub use counting::WireCount;
pub use input::{check_image, FlashInput, Region, MAX_FLASH};
pub use plan::Span;

/// Compressed bytes per FLASH_DEFL_DATA block: the stub's receive buffer.
const BLOCK: usize = 0x4000;

/// What the harness was doing when the flasher stub stopped answering, and so
/// what state flash may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Setting the stub up (flash geometry, baud rate): nothing was written.
    Setup,
    /// Comparing flash with the image: nothing was written.
    Comparing,
    /// Writing: flash between `from` and `to` may be half-written.
    Writing {
        /// First address written in this run.
        from: u32,
        /// End of the region being written.
        to: u32,
    },
    /// Reading back what was written: it was all sent, but not checked.
    Verifying {
        /// First address written.
        from: u32,
        /// End of what was written.
        to: u32,
    },
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Setup => write!(f, "setting it up; nothing was written"),
            Stage::Comparing => {
                write!(f, "comparing flash with the image; nothing was written")
            }
            Stage::Writing { from, to } => write!(
                f,
                "writing; flash from {from:#08x} to {to:#08x} may be half-written"
            ),
            Stage::Verifying { from, to } => write!(
                f,
                "verifying; everything was sent, but flash from {from:#08x} to {to:#08x} is unchecked"
            ),
        }
    }
}

/// What can go wrong while flashing.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum FlashError {
    /// The image file could not be read.
    #[error("cannot read {path}")]
    #[diagnostic(code(hil::flash::read_image), help("check the path"))]
    ReadImage {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The image does not fit in flash at the offset.
    #[error(
        "{len} bytes at offset {offset:#x} run past the end of the {} KB flash",
        flash_size / 1024
    )]
    #[diagnostic(
        code(hil::flash::too_big),
        help("check the offset and the image; nothing was written")
    )]
    TooBig {
        /// The offset.
        offset: u32,
        /// The image length.
        len: usize,
        /// The flash size it was checked against (the board's, once known).
        flash_size: u32,
    },
    /// An empty image.
    #[error("the image is empty")]
    #[diagnostic(
        code(hil::flash::empty),
        help("pass a .bin or an .elf with content; nothing was written")
    )]
    Empty,
    /// A binary that is not an ESP8266 image.
    #[error("{path} is not an ESP8266 image: {reason}")]
    #[diagnostic(
        code(hil::flash::not_an_image),
        help(
            "nothing was written: an image starts with 0xe9 and its segments; \
             data that is not firmware (a file system, calibration data) must be written unchecked"
        )
    )]
    NotAnImage {
        /// The file.
        path: String,
        /// What the image parser found.
        reason: ImageError,
    },
    /// An image whose checksum the ROM would reject.
    #[error("{path}: image checksum {stored:#04x} does not match its segments ({computed:#04x})")]
    #[diagnostic(
        code(hil::flash::image_checksum),
        help(
            "the ROM would refuse to boot it (`csum err`); rebuild the image; nothing was written"
        )
    )]
    ImageChecksum {
        /// The file.
        path: String,
        /// The checksum byte stored in the image.
        stored: u8,
        /// The checksum of its segments.
        computed: u8,
    },
    /// espflash could not convert the ELF.
    #[error("cannot convert the ELF: {what}")]
    #[diagnostic(
        code(hil::flash::elf),
        help("pass the .bin your toolchain built instead; nothing was written")
    )]
    Elf {
        /// What went wrong.
        what: String,
    },
    /// The serial link failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Serial(#[from] SerialError),
    /// espflash reported an error (connection, chip detection, stub upload).
    #[error("espflash: {message}")]
    #[diagnostic(
        code(hil::flash::espflash),
        help("is the board connected, powered, and wired for auto-reset (DTR/RTS)?")
    )]
    Espflash {
        /// espflash's message.
        message: String,
    },
    /// The stub stopped answering.
    #[error("the flasher stub stopped answering while {stage}")]
    #[diagnostic(
        code(hil::flash::stub_silent),
        help(
            "the board reset, lost power, or its link dropped; check the cable and supply, \
             then flash again (an image that was half-written does not boot)"
        )
    )]
    StubSilent {
        /// What the harness was doing, and what that means for flash.
        stage: Stage,
    },
    /// The stub answered a command with an error.
    #[error("the flasher stub refused {command} with error {code:#04x} while {stage}")]
    #[diagnostic(
        code(hil::flash::stub_error),
        help("0xc4 is a flash (SPI) failure, 0xc7 corrupt compressed data; try again, then try another board")
    )]
    StubRefused {
        /// The command.
        command: &'static str,
        /// The stub's error code.
        code: u8,
        /// What the harness was doing.
        stage: Stage,
    },
    /// The stub answered with something unusable.
    #[error("the flasher stub's answer was unusable: {what}")]
    #[diagnostic(
        code(hil::flash::stub_protocol),
        help("the link dropped bytes or the board reset; try again")
    )]
    StubProtocol {
        /// What went wrong.
        what: String,
    },
    /// A region still differs from the image after being written twice.
    #[error(
        "verification failed: flash from {offset:#08x} to {:#08x} does not hold the image \
         after writing it twice (flash MD5 {found}, image MD5 {expected})",
        offset + len
    )]
    #[diagnostic(
        code(hil::flash::verify),
        help("the flash does not keep what is written there: check the supply, then try another board")
    )]
    VerifyFailed {
        /// Region start.
        offset: u32,
        /// Region length.
        len: u32,
        /// MD5 of the image's bytes there.
        expected: String,
        /// MD5 the stub computed over flash there.
        found: String,
    },
}

fn espflash_error(error: impl fmt::Display) -> FlashError {
    FlashError::Espflash {
        message: error.to_string(),
    }
}

fn command_name(op: u8) -> &'static str {
    match op {
        0x0A => "READ_REG",
        0x0B => "SPI_SET_PARAMS",
        0x0F => "CHANGE_BAUDRATE",
        0x10 => "FLASH_DEFL_BEGIN",
        0x11 => "FLASH_DEFL_DATA",
        0x12 => "FLASH_DEFL_END",
        0x13 => "SPI_FLASH_MD5",
        _ => "a command",
    }
}

/// How to flash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlashOptions {
    /// The rate to move to once the stub runs ([`DEFAULT_BAUD`]); lower standard
    /// rates are tried when the port or the link cannot hold it.
    pub baud: u32,
}

impl Default for FlashOptions {
    fn default() -> FlashOptions {
        FlashOptions { baud: DEFAULT_BAUD }
    }
}

impl FlashOptions {
    /// Flashes at `baud`.
    pub fn baud(mut self, baud: u32) -> FlashOptions {
        self.baud = baud;
        self
    }
}

/// The board, as espflash reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSummary {
    /// e.g. "esp8266".
    pub chip: String,
    /// Station MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Detected flash size in bytes.
    pub flash_size: u32,
    /// Crystal in MHz.
    pub crystal_mhz: u32,
}

/// Progress, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlashEvent {
    /// Connected and identified; the stub runs.
    Connected(DeviceSummary),
    /// The link's rate for the rest of the run.
    Baud(BaudReport),
    /// A region was compared with flash.
    Compared {
        /// The region.
        region: Span,
        /// Bytes of it that differ (whole sectors).
        changed: u32,
        /// MD5 questions it took.
        probes: usize,
    },
    /// Flash already holds the input: nothing written.
    AlreadyFlashed,
    /// Writing starts.
    Writing {
        /// Bytes to write.
        bytes: u64,
        /// Their compressed size, what goes on the wire.
        compressed: u64,
    },
    /// Compressed bytes sent so far.
    Progress {
        /// Out of [`FlashEvent::Writing`]'s `compressed`.
        sent: u64,
    },
    /// Reading back the MD5 of what was written.
    Verifying,
    /// A span did not match after writing: writing it once more.
    Rewriting {
        /// The span.
        region: Span,
    },
    /// A region matches the image.
    Verified {
        /// The region.
        region: Span,
        /// Its MD5, hex.
        md5: String,
    },
}

/// How a flash run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashOutcome {
    /// Flash already held the input.
    Skipped,
    /// Written, and verified by MD5.
    Written {
        /// Whether flash was read back and matched (always, since ELF inputs are
        /// verified too).
        verified: bool,
    },
}

/// The result of [`flash_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// The board.
    pub device: DeviceSummary,
    /// What happened.
    pub outcome: FlashOutcome,
    /// Bytes the harness sent and received on the serial link.
    pub wire: WireCount,
    /// Of those, what connecting took (reset, SYNC, espflash's stub upload at
    /// the rate connected at, flash detection): the same for any tool that uses
    /// a stub.
    pub connect_wire: WireCount,
    /// The rate the data went at.
    pub baud: BaudReport,
    /// Bytes of the input.
    pub image_bytes: u64,
    /// Bytes written (whole sectors that differed), before compression.
    pub written_bytes: u64,
    /// What they took compressed.
    pub compressed_bytes: u64,
    /// MD5 questions asked while comparing.
    pub probes: usize,
    /// Spans written a second time because they did not match.
    pub rewritten: Vec<Span>,
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// Everything a run needs to turn a stub failure into an error.
struct Link {
    port_name: String,
}

impl Link {
    fn error(&self, failure: StubFailure, stage: Stage) -> FlashError {
        match failure {
            StubFailure::Silent => FlashError::StubSilent { stage },
            StubFailure::Refused { op, code } => FlashError::StubRefused {
                command: command_name(op),
                code,
                stage,
            },
            StubFailure::Malformed(what) => FlashError::StubProtocol { what },
            StubFailure::Port(source) => FlashError::Serial(SerialError::Io {
                path: self.port_name.clone(),
                source,
            }),
        }
    }
}

/// Connects through espflash (reset into the ROM loader, chip detection, stub
/// upload), then hands the port to a [`StubClient`].
fn connect(
    port: Box<dyn SerialPort>,
    baud: u32,
    link: &Link,
) -> Result<(StubClient, DeviceSummary), FlashError> {
    let (port, device) = espflash_connect(port, true)?;
    // The stub keeps the rate the ROM measured.
    let mut client = StubClient::new(port, baud);
    client
        .spi_set_params(device.flash_size)
        .map_err(|f| link.error(f, Stage::Setup))?;
    Ok((client, device))
}

/// Connects straight at `rate`: the ESP8266's ROM loader measures the client's
/// rate on SYNC's 0x55 bytes, so the stub goes up at that rate too. When the
/// port refuses the rate or the board does not answer at it, connects at the
/// loader's 115200 instead; the attempt given up is returned.
fn connect_fast(
    spec: &PortSpec,
    rate: u32,
    link: &Link,
) -> Result<
    (
        StubClient,
        DeviceSummary,
        counting::Counter,
        Option<BaudAttempt>,
    ),
    FlashError,
> {
    if rate > LOADER_BAUD {
        let failure = match spec.open(rate) {
            Ok(port) => {
                let (port, wire) = counting::CountingPort::wrap(port);
                match connect(Box::new(port), rate, link) {
                    Ok((client, device)) => return Ok((client, device, wire, None)),
                    // A stub that stopped answering is no rate problem.
                    Err(FlashError::Espflash { .. }) => BaudFailure::NoAnswer,
                    Err(other) => return Err(other),
                }
            }
            Err(_) => BaudFailure::PortRefused,
        };
        let (port, wire) = counting::CountingPort::wrap(spec.open(LOADER_BAUD)?);
        let (client, device) = connect(Box::new(port), LOADER_BAUD, link)?;
        return Ok((
            client,
            device,
            wire,
            Some(BaudAttempt {
                baud: rate,
                failure,
            }),
        ));
    }
    let (port, wire) = counting::CountingPort::wrap(spec.open(LOADER_BAUD)?);
    let (client, device) = connect(Box::new(port), LOADER_BAUD, link)?;
    Ok((client, device, wire, None))
}

/// Moves the link to the fastest rate of the ladder that works; may reconnect.
/// A rate that already failed while connecting is not tried again.
fn raise_baud(
    mut client: StubClient,
    requested: u32,
    failed: Option<BaudAttempt>,
    link: &Link,
) -> Result<(StubClient, BaudReport), FlashError> {
    let mut report = BaudReport {
        requested,
        used: client.baud(),
        fell_back: failed.into_iter().collect(),
    };
    let ladder: Vec<u32> = baud::ladder(requested, client.baud())
        .into_iter()
        .filter(|rate| !report.fell_back.iter().any(|a| a.baud == *rate))
        .collect();
    for rate in ladder {
        let attempt = baud::try_rate(&mut client, rate).map_err(|f| link.error(f, Stage::Setup))?;
        let failure = match attempt {
            baud::Attempt::Switched => {
                report.used = rate;
                break;
            }
            baud::Attempt::Refused => BaudFailure::PortRefused,
            baud::Attempt::Recovered => BaudFailure::NoAnswer,
            baud::Attempt::Lost => {
                // The stub is at a rate the link cannot carry: start over.
                let mut port = client.into_port();
                port.set_baud_rate(LOADER_BAUD)
                    .map_err(|e| link.error(StubFailure::Port(e.into()), Stage::Setup))?;
                client = connect(port, LOADER_BAUD, link)?.0;
                BaudFailure::NoAnswer
            }
        };
        report.fell_back.push(BaudAttempt {
            baud: rate,
            failure,
        });
    }
    report.used = client.baud();
    Ok((client, report))
}

/// Writes `data` at `offset` as one compressed stream.
fn write_run(
    client: &mut StubClient,
    offset: u32,
    data: &[u8],
    compressed: &[u8],
    sent: &mut u64,
    on_event: &mut dyn FnMut(FlashEvent),
) -> Result<(), StubFailure> {
    let blocks: Vec<&[u8]> = compressed.chunks(BLOCK).collect();
    client.defl_begin(data.len() as u32, blocks.len() as u32, BLOCK as u32, offset)?;
    // The stub answers a block once the one before is in flash.
    let per_block = write_time(data.len().div_ceil(blocks.len().max(1)));
    for (seq, block) in blocks.iter().enumerate() {
        client.defl_data(seq as u32, block, per_block)?;
        *sent += block.len() as u64;
        on_event(FlashEvent::Progress { sent: *sent });
    }
    client.defl_end(per_block)
}

fn slice(region: &Region, span: Span) -> &[u8] {
    let start = (span.offset - region.offset) as usize;
    &region.data[start..start + span.len as usize]
}

/// Reads the board's chip, MAC and flash size through the ROM loader (no stub,
/// nothing written), then resets it into its firmware. The MAC is what a board
/// puts in its DHCP requests, so the lab can tell which lease is whose.
pub fn identify(spec: &PortSpec) -> Result<DeviceSummary, FlashError> {
    let (mut port, device) = espflash_connect(spec.open(LOADER_BAUD)?, false)?;
    let _ = crate::serial::hard_reset(port.as_mut());
    Ok(device)
}

/// espflash resets the board into its ROM loader, syncs, detects the chip and,
/// with `use_stub`, uploads its flasher stub; the port comes back with what it
/// read of the chip.
fn espflash_connect(
    port: Box<dyn SerialPort>,
    use_stub: bool,
) -> Result<(Box<dyn SerialPort>, DeviceSummary), FlashError> {
    // A port opened by path or URL: espflash only shows these in its messages.
    let usb = UsbPortInfo {
        vid: 0,
        pid: 0,
        serial_number: None,
        manufacturer: None,
        product: None,
        location: None,
    };
    let mut flasher = Flasher::connect(Interface { serial_port: port }, usb, None, use_stub)
        .map_err(espflash_error)?;
    let info = flasher.device_info().map_err(espflash_error)?;
    let device = DeviceSummary {
        chip: info.chip.to_string(),
        mac: info.mac_address.clone(),
        flash_size: info.flash_size.size(),
        crystal_mhz: info.crystal_frequency,
    };
    Ok((flasher.into_interface().serial_port, device))
}

/// Flashes `input` with the default options; see [`flash_with`].
pub fn flash(
    spec: &PortSpec,
    input: &FlashInput,
    on_event: &mut dyn FnMut(FlashEvent),
) -> Result<FlashReport, FlashError> {
    flash_with(spec, input, &FlashOptions::default(), on_event)
}

/// Flashes `input` onto the board on `spec`: connects (reset into the ROM loader,
/// espflash's stub), raises the rate, writes the sectors that differ compressed,
/// verifies them by MD5, and resets the board into its firmware.
///
/// Bad input is refused before the port is opened. When the stub stops
/// answering, the error's [`Stage`] says whether flash may be half-written; the
/// board is then left as it is.
pub fn flash_with(
    spec: &PortSpec,
    input: &FlashInput,
    options: &FlashOptions,
    on_event: &mut dyn FnMut(FlashEvent),
) -> Result<FlashReport, FlashError> {
    // Checked before anything touches the board.
    input.regions(None)?;
    let link = Link {
        port_name: spec.to_string(),
    };
    let (client, device, wire, failed) = connect_fast(spec, options.baud, &link)?;
    let connect_wire = wire.get();
    on_event(FlashEvent::Connected(device.clone()));
    // Against the board's own flash size (an ELF's header records it).
    let regions = input.regions(Some(device.flash_size))?;
    let (mut client, baud) = raise_baud(client, options.baud, failed, &link)?;
    on_event(FlashEvent::Baud(baud.clone()));

    let mut probes = 0;
    let mut changed: Vec<Vec<Span>> = Vec::new();
    for region in &regions {
        let comparison = plan::compare(region.span(), |span| {
            Ok(client.md5(span.offset, span.len)? == md5(slice(region, span)))
        })
        .map_err(|f| link.error(f, Stage::Comparing))?;
        probes += comparison.probes;
        on_event(FlashEvent::Compared {
            region: region.span(),
            changed: comparison.changed.iter().map(|s| s.len).sum(),
            probes: comparison.probes,
        });
        changed.push(comparison.changed);
    }
    let mut report = FlashReport {
        device,
        outcome: FlashOutcome::Skipped,
        wire: WireCount::default(),
        connect_wire,
        baud,
        image_bytes: regions.iter().map(|r| r.data.len() as u64).sum(),
        written_bytes: 0,
        compressed_bytes: 0,
        probes,
        rewritten: Vec::new(),
    };
    if changed.iter().all(Vec::is_empty) {
        on_event(FlashEvent::AlreadyFlashed);
    } else {
        write_changes(
            &mut client,
            &regions,
            &changed,
            &link,
            &mut report,
            on_event,
        )?;
        report.outcome = FlashOutcome::Written { verified: true };
    }
    // The board boots what flash now holds.
    let mut port = client.into_port();
    crate::serial::hard_reset(port.as_mut())
        .map_err(|e| link.error(StubFailure::Port(e.into()), Stage::Setup))?;
    report.wire = wire.get();
    Ok(report)
}

/// Writes the changed sectors of every region, then verifies each region.
fn write_changes(
    client: &mut StubClient,
    regions: &[Region],
    changed: &[Vec<Span>],
    link: &Link,
    report: &mut FlashReport,
    on_event: &mut dyn FnMut(FlashEvent),
) -> Result<(), FlashError> {
    let mut work = Vec::new();
    for (region, spans) in regions.iter().zip(changed) {
        for run in plan::runs(spans) {
            work.push((region, run, compress(slice(region, run))));
        }
    }
    let (Some(first), Some(last)) = (work.first(), work.last()) else {
        return Ok(());
    };
    let (from, to) = (first.1.offset, last.1.end());
    report.written_bytes = work.iter().map(|(_, run, _)| u64::from(run.len)).sum();
    report.compressed_bytes = work.iter().map(|(.., z)| z.len() as u64).sum();
    on_event(FlashEvent::Writing {
        bytes: report.written_bytes,
        compressed: report.compressed_bytes,
    });
    let mut sent = 0;
    for (region, run, compressed) in &work {
        let writing = Stage::Writing {
            from,
            to: run.end(),
        };
        write_run(
            client,
            run.offset,
            slice(region, *run),
            compressed,
            &mut sent,
            on_event,
        )
        .map_err(|f| link.error(f, writing))?;
    }

    on_event(FlashEvent::Verifying);
    let verifying = Stage::Verifying { from, to };
    for (region, spans) in regions.iter().zip(changed) {
        if spans.is_empty() {
            continue;
        }
        let expected = md5(&region.data);
        let found = client
            .md5(region.offset, region.data.len() as u32)
            .map_err(|f| link.error(f, verifying))?;
        if found != expected {
            let bad = mismatched_sectors(client, region, link, verifying)?;
            for run in plan::runs(&bad) {
                on_event(FlashEvent::Rewriting { region: run });
                report.rewritten.push(run);
                let data = slice(region, run);
                let mut resent = 0;
                write_run(
                    client,
                    run.offset,
                    data,
                    &compress(data),
                    &mut resent,
                    &mut |_| {},
                )
                .map_err(|f| {
                    link.error(
                        f,
                        Stage::Writing {
                            from: run.offset,
                            to: run.end(),
                        },
                    )
                })?;
                let expected = md5(data);
                let found = client
                    .md5(run.offset, run.len)
                    .map_err(|f| link.error(f, verifying))?;
                if found != expected {
                    return Err(FlashError::VerifyFailed {
                        offset: run.offset,
                        len: run.len,
                        expected: hex::encode(expected),
                        found: hex::encode(found),
                    });
                }
            }
            let found = client
                .md5(region.offset, region.data.len() as u32)
                .map_err(|f| link.error(f, verifying))?;
            if found != expected {
                return Err(FlashError::VerifyFailed {
                    offset: region.offset,
                    len: region.data.len() as u32,
                    expected: hex::encode(expected),
                    found: hex::encode(found),
                });
            }
        }
        on_event(FlashEvent::Verified {
            region: region.span(),
            md5: hex::encode(expected),
        });
    }
    Ok(())
}

/// The sectors of `region` whose flash MD5 differs from the image's.
fn mismatched_sectors(
    client: &mut StubClient,
    region: &Region,
    link: &Link,
    stage: Stage,
) -> Result<Vec<Span>, FlashError> {
    let mut bad = Vec::new();
    for sector in plan::sectors(region.span()) {
        let found = client
            .md5(sector.offset, sector.len)
            .map_err(|f| link.error(f, stage))?;
        if found != md5(slice(region, sector)) {
            bad.push(sector);
        }
    }
    Ok(bad)
}
