//! Boards for scenarios: the board (or boards) chosen on the command line as a
//! pool that scenarios lease one at a time, each knowing what firmware it holds.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serialport::SerialPort;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::firmware::FirmwareSource;
use crate::flash::{self, FlashReport};
use crate::serial::session::open_held;
use crate::serial::{PortSpec, SerialError};
use crate::timeline::{BoardEvent, EventKind, Source, Timeline};
#[cfg(feature = "virtual")]
use crate::vboard::{BoardIndex, BoardOptions, VirtualBoard};
#[cfg(feature = "virtual")]
use crate::vfirmware::{TwinNetwork, TwinRunner};

/// What the twin on a virtual board finds around it; nothing in a `hil` built
/// without virtual boards.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualNetwork {
    #[cfg(feature = "virtual")]
    twin: TwinNetwork,
    /// The boards' pace: line rate and the twin's timings.
    #[cfg_attr(not(feature = "virtual"), allow(dead_code))]
    pace: hil_contract::pace::Pace,
}

impl VirtualNetwork {
    /// What a virtual board's twin gets from "DHCP": the lab's DNS and NTP.
    #[cfg_attr(not(feature = "virtual"), allow(unused_variables))]
    pub(crate) fn of(lab: &crate::lab::Lab) -> VirtualNetwork {
        #[cfg(feature = "virtual")]
        {
            let addrs = lab.addrs();
            VirtualNetwork {
                twin: TwinNetwork {
                    dns: Some(addrs.dns),
                    ntp: Some(std::net::SocketAddr::new(addrs.ntp.ip(), addrs.ntp.port())),
                    // The lab's access point takes whatever network the firmware
                    // was built for: an unprovisioned release binary joins its
                    // factory Wi-Fi here.
                    access_point: None,
                    wifi: None,
                },
                pace: hil_contract::pace::Pace::Default,
            }
        }
        #[cfg(not(feature = "virtual"))]
        VirtualNetwork {
            pace: hil_contract::pace::Pace::Default,
        }
    }

    /// The same network, its boards at `pace`.
    pub(crate) fn at_pace(mut self, pace: hil_contract::pace::Pace) -> VirtualNetwork {
        self.pace = pace;
        self
    }
}

/// Which boards a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardChoice {
    /// `virtual` or `virtual:N`: N virtual boards on loopback.
    Virtual {
        /// How many.
        count: u8,
    },
    /// Real boards (one per `--board`): a tty path, `serial:<usb serial>`,
    /// `location:<usb path>` or an `rfc2217://host:port` URL each.
    Ports(Vec<PortSpec>),
}

/// A `--board` value that is neither `virtual[:N]` nor a port.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("bad board `{given}`: {problem}")]
#[diagnostic(
    code(hil::runner::bad_board),
    help("a board is `virtual`, `virtual:N` (1 to 200), a tty such as /dev/ttyUSB0, serial:<USB serial number>, location:<USB path> or rfc2217://host:port")
)]
pub struct BadBoard {
    /// What was given.
    pub given: String,
    /// What is wrong.
    pub problem: String,
}

impl FromStr for BoardChoice {
    type Err = BadBoard;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: String| BadBoard {
            given: s.to_owned(),
            problem,
        };
        if s == "virtual" {
            return Ok(BoardChoice::Virtual { count: 1 });
        }
        if let Some(n) = s.strip_prefix("virtual:") {
            let range = "a run has 1 to 200 virtual boards (127.0.1.1 to 127.0.1.200)";
            let count: u32 = n
                .parse()
                .map_err(|_| bad(format!("`{n}` is not a number of boards; {range}")))?;
            let count = u8::try_from(count)
                .ok()
                .filter(|c| (1..=200).contains(c))
                .ok_or_else(|| bad(format!("{count} virtual boards: {range}")))?;
            return Ok(BoardChoice::Virtual { count });
        }
        s.parse::<PortSpec>()
            .map(|spec| BoardChoice::Ports(vec![spec]))
            .map_err(|e| bad(e.to_string()))
    }
}

impl fmt::Display for BoardChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardChoice::Virtual { count: 1 } => f.write_str("virtual"),
            BoardChoice::Virtual { count } => write!(f, "virtual:{count}"),
            BoardChoice::Ports(specs) => {
                let names: Vec<String> = specs.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// One board and what the harness knows about it.
pub(crate) struct Board {
    pub(crate) spec: PortSpec,
    /// The address its traffic comes from: 127.0.1.k for virtual board k; for a
    /// real board, the address the lab sees it at (set by the runner).
    pub(crate) device: IpAddr,
    /// What was last flashed by the harness (`None`: unknown, as found).
    pub(crate) installed: Option<String>,
    /// The open port, the chip held in reset, between uses.
    pub(crate) parked: Option<Box<dyn SerialPort>>,
    /// Keeps a virtual board alive as long as the pool.
    #[cfg(feature = "virtual")]
    _virtual: Option<VirtualBoard>,
}

impl fmt::Debug for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Board")
            .field("spec", &self.spec.to_string())
            .field("device", &self.device)
            .field("installed", &self.installed)
            .finish_non_exhaustive()
    }
}

impl Board {
    /// Starts virtual board `index`, its firmware twin using `network`.
    #[cfg(feature = "virtual")]
    pub(crate) async fn start_virtual(
        index: u32,
        dir: &std::path::Path,
        network: &VirtualNetwork,
        timeline: &Timeline,
    ) -> Result<Board, crate::Error> {
        let index = BoardIndex::new(index)?;
        let options = BoardOptions::new(index, dir.join(format!("board-{}.flash", index.get())))
            .flash_in_memory()
            .timeline(timeline.clone())
            .line_rate(network.pace == hil_contract::pace::Pace::Hardware)
            .firmware(Arc::new(
                TwinRunner::new(network.twin.clone()).with_pace(network.pace),
            ));
        let vboard = VirtualBoard::start(options).await?;
        let spec: PortSpec = vboard.url().parse()?;
        Ok(Board {
            spec,
            device: IpAddr::V4(index.device_ip()),
            installed: None,
            parked: None,
            _virtual: Some(vboard),
        })
    }

    /// Without virtual boards built in, asking for one is an error.
    #[cfg(not(feature = "virtual"))]
    pub(crate) async fn start_virtual(
        _index: u32,
        _dir: &std::path::Path,
        _network: &VirtualNetwork,
        _timeline: &Timeline,
    ) -> Result<Board, crate::Error> {
        Err(super::RunnerError::NoVirtualBoards.into())
    }

    /// A real board on `spec`, seen by the lab at `device`.
    pub(crate) fn real(spec: PortSpec, device: IpAddr) -> Board {
        Board {
            spec,
            device,
            installed: None,
            parked: None,
            #[cfg(feature = "virtual")]
            _virtual: None,
        }
    }

    /// The open port (chip held in reset), opening it when needed.
    pub(crate) async fn take_port(&mut self) -> Result<Box<dyn SerialPort>, SerialError> {
        if let Some(port) = self.parked.take() {
            return Ok(port);
        }
        let spec = self.spec.clone();
        tokio::task::spawn_blocking(move || open_held(&spec))
            .await
            .map_err(|e| SerialError::Io {
                path: self.spec.to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// Flashes `firmware` through espflash; the port is closed for it (espflash
    /// opens its own) and reopened held in reset afterwards.
    pub(crate) async fn flash(
        &mut self,
        firmware: &FirmwareSource,
        timeline: &Timeline,
    ) -> Result<FlashReport, crate::Error> {
        let input = firmware.flash_input()?;
        self.parked = None;
        let spec = self.spec.clone();
        let report = tokio::task::spawn_blocking(move || flash::flash(&spec, &input, &mut |_| {}))
            .await
            .map_err(|e| SerialError::Io {
                path: self.spec.to_string(),
                source: std::io::Error::other(e.to_string()),
            })??;
        self.installed = Some(firmware.to_string());
        timeline.record(
            Source::Board,
            Some(self.device),
            EventKind::Board {
                what: BoardEvent::Flashed {
                    firmware: firmware.to_string(),
                    written: matches!(report.outcome, flash::FlashOutcome::Written { .. }),
                    verified: matches!(
                        report.outcome,
                        flash::FlashOutcome::Written { verified: true }
                    ),
                },
            },
        );
        self.parked = Some(self.take_port().await?);
        Ok(report)
    }
}

/// Boards shared by concurrently running scenarios.
#[derive(Debug, Clone)]
pub(crate) struct BoardPool {
    idle: Arc<Mutex<Vec<Board>>>,
    free: Arc<Semaphore>,
    size: usize,
}

/// A board leased to one scenario; it goes back to the pool when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    board: Option<Board>,
    pool: Option<Arc<Mutex<Vec<Board>>>>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// A lease of a board nobody else shares (a virtual board started for one
    /// scenario).
    pub(crate) fn owned(board: Board, permit: OwnedSemaphorePermit) -> Lease {
        Lease {
            board: Some(board),
            pool: None,
            _permit: permit,
        }
    }

    pub(crate) fn device(&self) -> IpAddr {
        self.board
            .as_ref()
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |b| b.device)
    }

    pub(crate) fn board(&mut self) -> &mut Board {
        match self.board.as_mut() {
            Some(board) => board,
            // Only `drop` takes the board out.
            None => unreachable!("a lease holds its board until dropped"),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(board), Some(pool)) = (self.board.take(), &self.pool) {
            if let Ok(mut idle) = pool.lock() {
                idle.push(board);
            }
        }
    }
}

impl BoardPool {
    pub(crate) fn new(boards: Vec<Board>) -> BoardPool {
        let size = boards.len();
        BoardPool {
            idle: Arc::new(Mutex::new(boards)),
            free: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The boards, once no scenario holds one.
    pub(crate) fn into_boards(self) -> Vec<Board> {
        self.idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default()
    }

    /// Waits for a free board.
    pub(crate) async fn lease(&self) -> Option<Lease> {
        let permit = self.free.clone().acquire_owned().await.ok()?;
        let board = self.idle.lock().ok()?.pop()?;
        Some(Lease {
            board: Some(board),
            pool: Some(self.idle.clone()),
            _permit: permit,
        })
    }

    /// Flashes `firmware` onto every board that does not hold it yet.
    pub(crate) async fn install(
        &self,
        firmware: &FirmwareSource,
        timeline: &Timeline,
    ) -> Result<(), crate::Error> {
        let mut leases = Vec::new();
        for _ in 0..self.size {
            if let Some(lease) = self.lease().await {
                leases.push(lease);
            }
        }
        let flashes = leases.iter_mut().map(|lease| async {
            let board = lease.board();
            if board.installed.as_deref() != Some(&firmware.to_string()) {
                board.flash(firmware, timeline).await?;
            }
            Ok::<(), crate::Error>(())
        });
        for result in futures::future::join_all(flashes).await {
            result?;
        }
        Ok(())
    }
}
