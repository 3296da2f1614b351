//! The virtual board: a NodeMCU-style ESP8266 reached over RFC 2217 on loopback.
//!
//! It models what a flashing tool and a serial monitor can observe: the auto-reset
//! circuit (DTR/RTS to EN/GPIO0), the ROM serial loader and the flasher-stub
//! protocol, 4 MB of flash kept in a file, the ROM's boot banner and its check of
//! the image at offset 0. It never executes Xtensa code: a valid image is handed to
//! a [`FirmwareRunner`], the seam where the firmware's behavioural twin plugs in.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hil::vboard::VboardError> {
//! use hil::vboard::{start_boards, SilentFirmware};
//! use std::sync::Arc;
//!
//! let dir = std::path::Path::new("/tmp/boards");
//! let boards = start_boards(dir, 2, None, Arc::new(SilentFirmware)).await?;
//! println!("esptool.py --port {} chip_id", boards[0].url());
//! # Ok(()) }
//! ```

mod board;
mod boot;
mod fault;
pub(crate) mod flash;
mod line;
pub(crate) mod loader;
mod reset;
pub(crate) mod rfc2217;
mod stub;
pub mod wifi;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::image::ImageV1;
use crate::timeline::Timeline;

pub use boot::{ResetCause, ROM_BAUD};
pub use fault::Fault;
pub use flash::FLASH_SIZE;

/// What can go wrong running a virtual board.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum VboardError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    #[diagnostic(
        code(hil::vboard::bind),
        help(
            "pick a free port, or port 0 for any free one; virtual boards listen on loopback only"
        )
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The address is not a loopback address.
    #[error("{addr} is not a loopback address")]
    #[diagnostic(
        code(hil::vboard::not_loopback),
        help("virtual boards serve 127.0.0.0/8 only, e.g. --listen 127.0.0.1:4000")
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The flash file could not be created, read or written.
    #[error("flash file {}", path.display())]
    #[diagnostic(
        code(hil::vboard::flash_file),
        help("check that the directory exists and is writable")
    )]
    FlashFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The flash file has the wrong size.
    #[error("flash file {} is {len} bytes; a board's flash is exactly {FLASH_SIZE}", path.display())]
    #[diagnostic(
        code(hil::vboard::flash_size),
        help("delete the file to start from erased flash, or pass a 4 MB dump")
    )]
    FlashSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// A board index outside 1..=254.
    #[error("board index {index} is out of range")]
    #[diagnostic(
        code(hil::vboard::index),
        help("board indexes run from 1 to 254 (board k's firmware uses 127.0.1.k)")
    )]
    BadIndex {
        /// The index asked for.
        index: u32,
    },
    /// The board's task stopped abnormally.
    #[error("virtual board {index} stopped unexpectedly")]
    #[diagnostic(code(hil::vboard::crashed))]
    Crashed {
        /// Which board.
        index: u8,
    },
}

/// Which virtual board: 1..=254. Board k's firmware uses the address 127.0.1.k, so
/// the lab can tell boards apart by source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoardIndex(u8);

impl BoardIndex {
    /// Checks the range.
    pub fn new(index: u32) -> Result<BoardIndex, VboardError> {
        match u8::try_from(index) {
            Ok(k @ 1..=254) => Ok(BoardIndex(k)),
            _ => Err(VboardError::BadIndex { index }),
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The loopback address this board's firmware uses for its sockets.
    pub fn device_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 1, self.0)
    }

    /// The board's station MAC: Espressif's OUI 18:FE:34, then `48:49` ("HI") and
    /// the index, so it is stable across runs and distinct per board.
    pub fn mac(self) -> [u8; 6] {
        [0x18, 0xFE, 0x34, 0x48, 0x49, self.0]
    }
}

/// `18:fe:34:48:49:01`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A future the firmware runner returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The seam between the board and what runs "on" it after the ROM accepted an image.
///
/// The board calls [`FirmwareRunner::run`] once per boot of a valid image and drops
/// (aborts) the future at the next reset. Everything the firmware prints goes
/// through the [`Console`]; everything the client sends while it runs comes in
/// through it.
pub trait FirmwareRunner: Send + Sync + 'static {
    /// Runs the firmware of `boot.image` until the board resets.
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()>;
}

/// The default runner: a valid image prints nothing after the ROM's lines (the board
/// cannot run Xtensa code, and no twin is plugged in).
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentFirmware;

impl FirmwareRunner for SilentFirmware {
    fn run(&self, _boot: FirmwareBoot) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

/// What a firmware runner gets at boot.
pub struct FirmwareBoot {
    /// The image the ROM accepted at offset 0.
    pub image: ImageV1,
    /// The whole flash at boot (firmware reads its settings and descriptor here).
    pub flash: Arc<Vec<u8>>,
    /// The board's serial port, from the firmware's side.
    pub console: Console,
    /// Which board.
    pub index: BoardIndex,
    /// Why the chip started.
    pub cause: ResetCause,
}

impl std::fmt::Debug for FirmwareBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the 4 MB of flash.
        f.debug_struct("FirmwareBoot")
            .field("image", &self.image)
            .field("index", &self.index)
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

/// Bytes the board sends to the client, tagged with the UART rate they were sent at.
#[derive(Debug)]
pub(crate) enum Output {
    /// The chip restarts itself for this reason (the core after a crash,
    /// `ESP.restart()`, the hardware watchdog).
    Restart(ResetCause),
    /// UART output at `baud` (the ROM's 74880, the loader's rate, or what the
    /// firmware set).
    Uart {
        /// The bytes.
        bytes: Vec<u8>,
        /// The rate they were sent at.
        baud: u32,
    },
}

/// The firmware's side of the board's UART.
#[derive(Debug)]
pub struct Console {
    out: mpsc::UnboundedSender<Output>,
    input: mpsc::Receiver<Vec<u8>>,
    baud: u32,
}

impl Console {
    /// The UART's current rate (the ROM leaves it at 74880).
    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// Changes the UART's rate (what `Serial.begin(115200)` does).
    pub fn set_baud(&mut self, baud: u32) {
        self.baud = baud;
    }

    /// Sends bytes. Like a UART with nobody listening, this never blocks or fails:
    /// bytes sent while no client is connected are lost.
    pub fn write(&self, bytes: &[u8]) {
        let _ = self.out.send(Output::Uart {
            bytes: bytes.to_vec(),
            baud: self.baud,
        });
    }

    /// Restarts the chip, as the Arduino core does after an exception: the ROM
    /// prints its banner again and boots the image from flash.
    pub fn request_restart(&self) {
        self.restart(ResetCause::Exception);
    }

    /// Restarts the chip for `cause`: the ROM prints its banner again (at the
    /// rate that reset leaves the UART at) and boots the image from flash.
    pub fn restart(&self, cause: ResetCause) {
        let _ = self.out.send(Output::Restart(cause));
    }

    /// The next bytes the client sent, or `None` once the board resets.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        self.input.recv().await
    }
}

/// How to start one board.
#[derive(Clone)]
pub struct BoardOptions {
    index: BoardIndex,
    /// The flash file (`None`: flash in memory only).
    flash: Option<PathBuf>,
    listen: SocketAddr,
    timeline: Option<Timeline>,
    firmware: Arc<dyn FirmwareRunner>,
    link: board::LinkOptions,
}

impl std::fmt::Debug for BoardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardOptions")
            .field("index", &self.index)
            .field("flash", &self.flash)
            .field("listen", &self.listen)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl BoardOptions {
    /// Board `index` with its flash in `flash`, on an ephemeral loopback port, with
    /// [`SilentFirmware`], no timeline, no faults, and bytes delivered as fast as
    /// loopback carries them.
    pub fn new(index: BoardIndex, flash: impl Into<PathBuf>) -> BoardOptions {
        BoardOptions {
            index,
            flash: Some(flash.into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            timeline: None,
            firmware: Arc::new(SilentFirmware),
            link: board::LinkOptions::default(),
        }
    }

    /// Keeps the flash in memory only, erased at start and gone with the board
    /// (no 4 MB file per board: what a scenario run wants of its boards).
    pub fn flash_in_memory(mut self) -> BoardOptions {
        self.flash = None;
        self
    }

    /// Models the UART's line rate: every byte takes 10 bit times at the rate of
    /// whoever sends it (the client's RFC 2217 rate; the chip's: the ROM's measured
    /// rate, the stub's after CHANGE_BAUDRATE, the firmware's). Flashing times
    /// measured on the board are then what a real board takes on the wire. Off by
    /// default: scenarios run faster without it.
    pub fn line_rate(mut self, on: bool) -> BoardOptions {
        self.link.line_rate = on;
        self
    }

    /// Adds a fault (for tests of clients: a port that refuses a rate, a link that
    /// garbles, flash that does not keep a write, a stub that hangs, a supply
    /// that browns out).
    pub fn fault(mut self, fault: Fault) -> BoardOptions {
        self.link.faults.push(fault);
        self
    }

    /// Listens on `addr` (loopback only).
    pub fn listen(mut self, addr: SocketAddr) -> BoardOptions {
        self.listen = addr;
        self
    }

    /// Records resets, boot modes and flash writes on `timeline`.
    pub fn timeline(mut self, timeline: Timeline) -> BoardOptions {
        self.timeline = Some(timeline);
        self
    }

    /// Runs valid images with `firmware`.
    pub fn firmware(mut self, firmware: Arc<dyn FirmwareRunner>) -> BoardOptions {
        self.firmware = firmware;
        self
    }
}

/// A running virtual board. Dropping it stops the board.
#[derive(Debug)]
pub struct VirtualBoard {
    index: BoardIndex,
    addr: SocketAddr,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), VboardError>>>,
}

impl VirtualBoard {
    /// Opens the flash file, binds the port and powers the board on (it boots from
    /// flash, as a board plugged into USB does).
    pub async fn start(options: BoardOptions) -> Result<VirtualBoard, VboardError> {
        if !options.listen.ip().is_loopback() {
            return Err(VboardError::NotLoopback {
                addr: options.listen,
            });
        }
        let flash = match &options.flash {
            Some(path) => flash::Flash::open(path)?,
            None => flash::Flash::in_memory(),
        };
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| VboardError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| VboardError::Bind {
            addr: options.listen,
            source,
        })?;
        let (stop, stopped) = oneshot::channel();
        let chip = board::Chip::new(
            options.index,
            flash,
            options.timeline,
            options.firmware,
            options.link.faults.clone(),
        );
        let task = tokio::spawn(board::serve(listener, chip, options.link, stopped));
        Ok(VirtualBoard {
            index: options.index,
            addr,
            url: format!("rfc2217://{addr}"),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `rfc2217://127.0.0.1:PORT`, what esptool's `--port` takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which board.
    pub fn index(&self) -> BoardIndex {
        self.index
    }

    /// Stops the board and reports how its task ended.
    pub async fn stop(mut self) -> Result<(), VboardError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|_| VboardError::Crashed {
                index: self.index.get(),
            })?,
            None => Ok(()),
        }
    }

    /// Waits until the board's task ends (only on an error or a stop). Cancel-safe.
    pub async fn wait(&mut self) -> Result<(), VboardError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.task = None;
        result.map_err(|_| VboardError::Crashed {
            index: self.index.get(),
        })?
    }
}

impl Drop for VirtualBoard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts boards 1..=count, each with its flash in `dir/board-K.flash` and on its own
/// ephemeral loopback port.
pub async fn start_boards(
    dir: &Path,
    count: u8,
    timeline: Option<Timeline>,
    firmware: Arc<dyn FirmwareRunner>,
) -> Result<Vec<VirtualBoard>, VboardError> {
    let mut boards = Vec::with_capacity(count as usize);
    for k in 1..=count as u32 {
        let index = BoardIndex::new(k)?;
        let mut options = BoardOptions::new(index, dir.join(format!("board-{k}.flash")))
            .firmware(firmware.clone());
        if let Some(timeline) = &timeline {
            options = options.timeline(timeline.clone());
        }
        boards.push(VirtualBoard::start(options).await?);
    }
    Ok(boards)
}
