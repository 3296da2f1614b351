//! `--board labgrid:...`: places of a labgrid farm as boards, for every command
//! that takes a board. The places are acquired before the command's work and
//! released after it on every way out: success, errors, Ctrl-C and SIGTERM.

use std::fmt;
use std::net::IpAddr;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use hil::farm::{Farm, FarmEvent, FarmOptions, FarmSpec, HeldPlace, DEFAULT_COORDINATOR};
use hil::serial::PortSpec;
use miette::{IntoDiagnostic, Result};

/// Where the farm is.
#[derive(Debug, Clone, Args)]
pub struct FarmArgs {
    /// labgrid's coordinator for `--board labgrid:...`, HOST:PORT (labgrid's own
    /// LG_COORDINATOR; default 127.0.0.1:20408).
    #[arg(
        long,
        env = "LG_COORDINATOR",
        value_name = "HOST:PORT",
        help_heading = "Board farm"
    )]
    pub coordinator: Option<String>,
    /// Refuse a labgrid place another client holds, naming the holder, instead
    /// of waiting for it.
    #[arg(long, help_heading = "Board farm")]
    pub no_wait: bool,
}

impl FarmArgs {
    fn options(&self) -> FarmOptions {
        let addr = self
            .coordinator
            .clone()
            .unwrap_or_else(|| DEFAULT_COORDINATOR.to_string());
        // labgrid accepts a host without a port.
        let addr = if addr
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            addr
        } else {
            format!("{addr}:20408")
        };
        let options = FarmOptions::new(addr);
        if self.no_wait {
            options.no_wait()
        } else {
            options
        }
    }
}

/// A board given to `flash`, `monitor`, `reset` or `doctor`: a port, or a
/// labgrid place.
#[derive(Debug, Clone)]
pub enum BoardArg {
    /// A tty, USB serial number or location, or rfc2217://.
    Port(PortSpec),
    /// `labgrid:PLACE` or `labgrid:TAG=VALUE,...`.
    Farm(FarmSpec),
}

impl FromStr for BoardArg {
    type Err = miette::Report;

    fn from_str(s: &str) -> Result<BoardArg> {
        if s.starts_with("labgrid:") {
            let spec: FarmSpec = s.parse()?;
            if spec.count != 1 {
                miette::bail!(miette::miette!(
                    code = "hil::farm::one_board",
                    help = "leave out *N: this command drives one board",
                    "`{s}` asks for {} places",
                    spec.count
                ));
            }
            return Ok(BoardArg::Farm(spec));
        }
        Ok(BoardArg::Port(s.parse()?))
    }
}

impl fmt::Display for BoardArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardArg::Port(port) => port.fmt(f),
            BoardArg::Farm(spec) => spec.fmt(f),
        }
    }
}

/// Places acquired from a farm, with the runtime that keeps the session's
/// stream open and a watcher that releases them when a signal arrives.
pub struct FarmSession {
    runtime: tokio::runtime::Runtime,
    farm: Arc<Farm>,
    /// Whether the watcher itself handles Ctrl-C and SIGTERM (release, exit 2);
    /// a command with its own graceful stop disarms it.
    armed: Arc<AtomicBool>,
    released: bool,
}

impl FarmSession {
    /// Connects and acquires `specs`' places, printing progress; Ctrl-C or
    /// SIGTERM meanwhile gives back what was reserved and exits 2.
    pub fn acquire(specs: &[FarmSpec], args: &FarmArgs) -> Result<(FarmSession, Vec<HeldPlace>)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .into_diagnostic()?;
        let mut signals = {
            let _inside = runtime.enter();
            super::stop::StopSignals::catch()?
        };
        let options = args.options();
        let farm = Arc::new(runtime.block_on(Farm::connect(&options))?);
        let armed = Arc::new(AtomicBool::new(true));
        let session = FarmSession {
            runtime,
            farm: farm.clone(),
            armed: armed.clone(),
            released: false,
        };
        let acquired = session.runtime.block_on(async {
            let mut held = Vec::new();
            for spec in specs {
                let mut show = |event: FarmEvent| match event {
                    FarmEvent::Connected { .. } => {}
                    event => eprintln!("  {event}"),
                };
                tokio::select! {
                    places = farm.acquire(spec, &mut show) => held.extend(places?),
                    _ = signals.next() => return Ok(None),
                }
            }
            Ok::<_, hil::farm::FarmError>(Some(held))
        });
        let held = match acquired {
            Ok(Some(held)) => held,
            Ok(None) => {
                eprintln!("\nhil: stopped while waiting for places; giving back what was reserved");
                session.release();
                std::process::exit(i32::from(super::EXIT_USAGE));
            }
            Err(e) => {
                session.release();
                return Err(e.into());
            }
        };
        // From here on a signal releases the places before the process ends.
        session.runtime.spawn(async move {
            loop {
                signals.next().await;
                if armed.load(Ordering::SeqCst) {
                    eprintln!("\nhil: stopping: releasing the labgrid places");
                    let _ = farm.release().await;
                    std::process::exit(i32::from(super::EXIT_USAGE));
                }
            }
        });
        Ok((session, held))
    }

    /// Leaves Ctrl-C and SIGTERM to the command, which must call [`Self::release`]
    /// (or [`Self::releaser`]) on its way out.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// Releases the places from any thread, blocking until done (for a
    /// command's abort path).
    pub fn releaser(&self) -> impl Fn() + Send + Sync + 'static {
        let farm = self.farm.clone();
        let handle = self.runtime.handle().clone();
        move || {
            let farm = farm.clone();
            let handle = handle.clone();
            // A thread of its own: the caller may be inside another runtime.
            let _ = std::thread::spawn(move || handle.block_on(farm.release())).join();
        }
    }

    /// Gives every place back and cancels the reservations.
    pub fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        match self.runtime.block_on(self.farm.release()) {
            Ok(places) => {
                for place in places {
                    eprintln!("  released place {place}");
                }
            }
            Err(e) => eprintln!("{:?}", miette::Report::new(e)),
        }
    }
}

impl Drop for FarmSession {
    fn drop(&mut self) {
        self.release_now();
    }
}

/// Runs `body` on the port of `board`: a farm place is acquired first and
/// released afterwards, however `body` ends. `body` also gets the board's
/// address when the place records one (tag `ip=`).
/// With `own_signals`, the command stops on Ctrl-C and SIGTERM itself (and
/// returns); otherwise a signal releases the place and exits 2.
pub fn with_board(
    board: &BoardArg,
    args: &FarmArgs,
    own_signals: bool,
    body: impl FnOnce(PortSpec, Option<IpAddr>) -> Result<ExitCode>,
) -> Result<ExitCode> {
    match board {
        BoardArg::Port(port) => body(port.clone(), None),
        BoardArg::Farm(spec) => {
            let (session, held) = FarmSession::acquire(std::slice::from_ref(spec), args)?;
            if own_signals {
                session.disarm();
            }
            let Some(place) = held.into_iter().next() else {
                miette::bail!("labgrid gave no place for {spec}");
            };
            let result = body(place.port, place.device_ip);
            session.release();
            result
        }
    }
}
