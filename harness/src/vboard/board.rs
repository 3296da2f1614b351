//! The chip's life between resets, and the connection loop that carries its UART
//! over RFC 2217. One client at a time, as with a real serial port; the board keeps
//! running (and its output is lost) while nobody is connected.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::boot::{self, ImageCheck, ResetCause, ROM_BAUD};
use super::fault::Faults;
use super::flash::Flash;
use super::line::{self, Direction};
use super::loader::{Effect, Efuse, Loader};
use super::reset::{BootMode, Circuit, Edge};
use super::rfc2217::{self, Incoming, PortRequest};
use super::{BoardIndex, Console, FirmwareBoot, FirmwareRunner, Output, VboardError};
use crate::timeline::{BoardEvent, EventKind, RomMode, Source, Timeline};
use hil_contract::slip;

/// Bytes queued from the client to a running firmware before the UART "overflows".
const CONSOLE_QUEUE: usize = 256;

enum Run {
    /// EN is low.
    Held,
    /// The serial loader (ROM, then possibly the stub).
    Loader {
        slip: slip::Decoder,
        loader: Box<Loader>,
        uart: LoaderUart,
    },
    /// A valid image was handed to the firmware runner.
    Firmware {
        task: JoinHandle<()>,
        input: mpsc::Sender<Vec<u8>>,
    },
    /// The ROM stopped (`ets_main.c`): only a reset gets it going again.
    Stopped,
}

/// The loader's UART rate. The ROM measures the rate of the client's bytes
/// until it has answered a SYNC, then keeps that rate (a client that changes its
/// rate afterwards, without a reset, gets nothing intelligible); a stub keeps the
/// rate it started at until CHANGE_BAUDRATE.
#[derive(Debug, Clone, Copy)]
struct LoaderUart {
    baud: u32,
    autobaud: bool,
}

pub(crate) struct Chip {
    index: BoardIndex,
    flash: Flash,
    circuit: Circuit,
    run: Run,
    timeline: Option<Timeline>,
    firmware: Arc<dyn FirmwareRunner>,
    out: mpsc::UnboundedSender<Output>,
    out_rx: Option<mpsc::UnboundedReceiver<Output>>,
    faults: Faults,
    /// When the supply browns out next (the fault, armed at each firmware start).
    brown_out_at: Option<Instant>,
}

impl Chip {
    pub(crate) fn new(
        index: BoardIndex,
        mut flash: Flash,
        timeline: Option<Timeline>,
        firmware: Arc<dyn FirmwareRunner>,
        faults: Faults,
    ) -> Chip {
        for (offset, times) in faults.corrupt_writes() {
            flash.spoil_writes(offset, times);
        }
        let (out, out_rx) = mpsc::unbounded_channel();
        Chip {
            index,
            flash,
            circuit: Circuit::new(),
            run: Run::Held,
            timeline,
            firmware,
            out,
            out_rx: Some(out_rx),
            faults,
            brown_out_at: None,
        }
    }

    fn note(&self, event: BoardEvent) {
        if let Some(timeline) = &self.timeline {
            timeline.record(
                Source::Board,
                Some(IpAddr::V4(self.index.device_ip())),
                EventKind::Board { what: event },
            );
        }
    }

    /// The ROM's text at `baud`.
    fn uart(&self, text: &str, baud: u32) {
        let _ = self.out.send(Output::Uart {
            bytes: text.as_bytes().to_vec(),
            baud,
        });
    }

    /// Ends what was running: the firmware task, or the loader's flash session.
    fn stop_firmware(&mut self) {
        self.brown_out_at = None;
        match &mut self.run {
            Run::Firmware { task, .. } => task.abort(),
            Run::Loader { loader, .. } => {
                if let Some(Effect::Event(event)) = loader.close() {
                    self.note(event);
                }
            }
            Run::Held | Run::Stopped => {}
        }
    }

    fn hold(&mut self) {
        self.stop_firmware();
        self.run = Run::Held;
        self.note(BoardEvent::ChipHeld);
    }

    /// The firmware restarted the chip (or the watchdog did): GPIO0 is high (it
    /// is running), so the ROM boots from flash again.
    fn restart(&mut self, cause: ResetCause) {
        if let Run::Firmware { .. } = self.run {
            self.start(cause, BootMode::Flash);
        }
    }

    /// The supply dipped: a power-on reset nobody asked for (the timeline
    /// records it as the ROM starting with `rst cause:1`).
    fn brown_out(&mut self) {
        self.start(ResetCause::BrownOut, BootMode::Flash);
    }

    /// EN rose: the ROM starts in `mode`.
    fn start(&mut self, cause: ResetCause, mode: BootMode) {
        self.stop_firmware();
        match mode {
            BootMode::Download => {
                // The ROM waits silently for SYNC in UART download mode.
                self.note(BoardEvent::RomStarted {
                    mode: RomMode::Download,
                    cause: cause.code(),
                });
                let loader = Loader::new(Efuse::for_mac(self.index.mac()))
                    .hang_at_block(self.faults.stub_hang());
                self.run = Run::Loader {
                    slip: slip::Decoder::new(),
                    loader: Box::new(loader),
                    uart: LoaderUart {
                        baud: hil_contract::esp8266::LOADER_BAUD,
                        autobaud: true,
                    },
                };
            }
            BootMode::Flash => {
                self.note(BoardEvent::RomStarted {
                    mode: RomMode::Flash,
                    cause: cause.code(),
                });
                self.uart(&boot::banner(cause, 3), cause.rom_baud());
                self.boot_image(cause);
            }
        }
    }

    /// The ROM's image check and, for a valid image, the firmware.
    fn boot_image(&mut self, cause: ResetCause) {
        self.stop_firmware();
        let (check, text) = boot::check_image(self.flash.bytes());
        self.uart(&text, cause.rom_baud());
        match check {
            ImageCheck::Valid(image) => {
                self.note(BoardEvent::ImageAccepted {
                    segments: image.segments().len(),
                    entry: image.entry(),
                });
                let (input, input_rx) = mpsc::channel(CONSOLE_QUEUE);
                let console = Console {
                    out: self.out.clone(),
                    input: input_rx,
                    baud: ROM_BAUD,
                };
                let boot = FirmwareBoot {
                    image,
                    flash: Arc::new(self.flash.bytes().to_vec()),
                    console,
                    index: self.index,
                    cause,
                };
                let task = tokio::spawn(self.firmware.run(boot));
                self.run = Run::Firmware { task, input };
                self.brown_out_at = self
                    .faults
                    .brown_out_after()
                    .map(|after| Instant::now() + after);
            }
            ImageCheck::ChecksumError(image) => {
                self.note(BoardEvent::ImageChecksumError {
                    stored: image.stored_checksum(),
                    computed: image.computed_checksum(),
                });
                self.run = Run::Stopped;
            }
            ImageCheck::Unbootable(error) => {
                self.note(BoardEvent::NoBootableImage {
                    reason: error.to_string(),
                });
                self.run = Run::Stopped;
            }
        }
    }

    fn edge(&mut self, edge: Option<Edge>) {
        match edge {
            Some(Edge::HeldInReset) => self.hold(),
            Some(Edge::Released(mode)) => self.start(ResetCause::External, mode),
            None => {}
        }
    }

    pub(crate) fn power_on(&mut self) {
        self.start(ResetCause::PowerOn, BootMode::Flash);
    }

    fn set_dtr(&mut self, asserted: bool) {
        let edge = self.circuit.set_dtr(asserted);
        self.edge(edge);
    }

    fn set_rts(&mut self, asserted: bool) {
        let edge = self.circuit.set_rts(asserted);
        self.edge(edge);
    }

    /// The client went away: its adapter releases DTR and RTS.
    fn disconnected(&mut self) {
        // A frame cut off with the connection must not swallow the next client's
        // first frame.
        if let Run::Loader { slip, .. } = &mut self.run {
            slip.clear();
        }
        self.set_dtr(false);
        self.set_rts(false);
    }

    /// Bytes reach the chip's UART; `sent_at` is the rate the client's adapter
    /// sent them at. A chip listening at another rate samples garbage.
    fn receive(&mut self, bytes: &[u8], sent_at: u32) -> Result<(), VboardError> {
        let mut boot_flash = false;
        let mut notes = Vec::new();
        match &mut self.run {
            Run::Loader { slip, loader, uart } => {
                if uart.autobaud {
                    uart.baud = sent_at;
                }
                let heard = boot::resample(bytes, sent_at, uart.baud);
                let noise_before = slip.noise();
                let frames = slip.feed(&heard);
                if slip.noise() > noise_before {
                    notes.push(BoardEvent::LoaderNoise {
                        bytes: slip.noise() - noise_before,
                    });
                }
                for frame in frames {
                    let sync = frame.get(1) == Some(&hil_contract::loader::command::SYNC);
                    for effect in loader.handle(&frame, &mut self.flash, uart.baud)? {
                        match effect {
                            Effect::Send(bytes) => {
                                if sync {
                                    // Synced: the ROM's divisor is set.
                                    uart.autobaud = false;
                                }
                                let _ = self.out.send(Output::Uart {
                                    bytes,
                                    baud: uart.baud,
                                });
                            }
                            Effect::SetBaud(baud) => uart.baud = baud,
                            Effect::BootFlash => boot_flash = true,
                            Effect::Event(event) => {
                                if matches!(event, BoardEvent::StubStarted { .. }) {
                                    // The stub keeps the divisor the ROM measured.
                                    uart.autobaud = false;
                                }
                                notes.push(event);
                            }
                        }
                    }
                }
            }
            Run::Firmware { input, .. } => {
                // A full queue is a UART FIFO overflow: the bytes are lost.
                let _ = input.try_send(bytes.to_vec());
            }
            Run::Held | Run::Stopped => {}
        }
        for note in notes {
            self.note(note);
        }
        if boot_flash {
            // The loader jumps to the flash boot path without a reset: no banner.
            self.note(BoardEvent::LoaderLeftForFlashBoot);
            self.boot_image(ResetCause::External);
        }
        Ok(())
    }
}

async fn read_some(reader: &mut Option<OwnedReadHalf>, buf: &mut [u8]) -> std::io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}

/// How the board carries its UART to the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkOptions {
    /// Bytes take the time a UART at the current rate needs (see [`line`]).
    pub(crate) line_rate: bool,
    pub(crate) faults: Faults,
}

struct Client {
    writer: OwnedWriteHalf,
    /// Who holds the board, for the next client's "busy" answer.
    peer: std::net::SocketAddr,
    /// When it connected: a client that says nothing at all is let go.
    since: Instant,
    telnet: rfc2217::Server,
    /// Bytes on the TCP connection, Telnet framing included.
    from_client: u64,
    to_client: u64,
    /// With the line rate modelled: bytes on their way, each due when its last
    /// stop bit would arrive.
    to_chip: VecDeque<(Instant, Vec<u8>, u32)>,
    to_client_queue: VecDeque<(Instant, Vec<u8>)>,
    rx: Direction,
    tx: Direction,
}

/// How long a client may hold the board without sending a single byte (no
/// Telnet negotiation, no data): a TCP connection that never speaks must not
/// keep the board from everyone else forever.
const SILENT_CLIENT: std::time::Duration = std::time::Duration::from_secs(10);

impl Client {
    /// When a client that never spoke is let go.
    fn silent_until(&self) -> Option<Instant> {
        (self.from_client == 0).then(|| self.since + SILENT_CLIENT)
    }

    fn next_due(&self) -> Option<Instant> {
        let rx = self.to_chip.front().map(|(due, ..)| *due);
        let tx = self.to_client_queue.front().map(|(due, _)| *due);
        match (rx, tx) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn gone(chip: &mut Chip, client: &mut Option<Client>, reader: &mut Option<OwnedReadHalf>) {
    if let Some(mut c) = client.take() {
        // What the adapter already sent still reaches the chip (the last request,
        // a reset's tail); what was on its way back is lost with the client.
        for (_, bytes, baud) in c.to_chip.drain(..) {
            let _ = chip.receive(&bytes, baud);
        }
        chip.note(BoardEvent::ClientDisconnected {
            rx: c.from_client,
            tx: c.to_client,
        });
    }
    *reader = None;
    chip.disconnected();
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// How long a client arriving while another holds the board waits for the
/// holder to leave before it is told the board is busy.
const HANDOVER: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection that now holds the board.
fn new_client(stream: TcpStream, peer: SocketAddr, link: &LinkOptions) -> (OwnedReadHalf, Client) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let client = Client {
        writer: w,
        peer,
        since: Instant::now(),
        telnet: rfc2217::Server::new(hil_contract::esp8266::LOADER_BAUD)
            .max_baud(link.faults.max_baud()),
        from_client: 0,
        to_client: 0,
        to_chip: VecDeque::new(),
        to_client_queue: VecDeque::new(),
        rx: Direction::default(),
        tx: Direction::default(),
    };
    (r, client)
}

/// One client at a time, as a real port: the next one is told who holds it
/// rather than left waiting in silence.
fn refuse(chip: &mut Chip, stream: TcpStream, peer: SocketAddr, held_by: SocketAddr) {
    chip.note(BoardEvent::ClientRefused { peer, held_by });
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = stream
            .write_all(format!("busy: held by {held_by}\r\n").as_bytes())
            .await;
        let _ = stream.shutdown().await;
    });
}

/// Serves the board until `stop` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    mut chip: Chip,
    link: LinkOptions,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), VboardError> {
    let Some(mut out_rx) = chip.out_rx.take() else {
        return Ok(());
    };
    chip.power_on();
    let mut reader: Option<OwnedReadHalf> = None;
    let mut client: Option<Client> = None;
    // A client that arrived while another held the board: the holder may be on
    // its way out (a tool closes its port and opens it again at once), so the
    // newcomer waits a moment before it is told the board is busy.
    let mut waiting: Option<(TcpStream, SocketAddr, Instant)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if client.is_none() {
            if let Some((stream, peer, _)) = waiting.take() {
                let (r, c) = new_client(stream, peer, &link);
                reader = Some(r);
                client = Some(c);
                chip.note(BoardEvent::ClientConnected { peer });
            }
        }
        let due = client.as_ref().and_then(Client::next_due);
        let silent = client.as_ref().and_then(Client::silent_until);
        let handover = waiting.as_ref().map(|(_, _, until)| *until);
        let brown_out = chip.brown_out_at;
        tokio::select! {
            _ = &mut stop => break,
            _ = sleep_until(brown_out) => chip.brown_out(),
            _ = sleep_until(silent) => {
                if let Some(c) = client.as_ref() {
                    chip.note(BoardEvent::ClientSilent { peer: c.peer });
                }
                gone(&mut chip, &mut client, &mut reader);
            }
            _ = sleep_until(handover) => {
                if let (Some((stream, peer, _)), Some(holder)) = (waiting.take(), client.as_ref()) {
                    refuse(&mut chip, stream, peer, holder.peer);
                }
            }
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                match (&client, &waiting) {
                    (None, _) => {
                        let (r, c) = new_client(stream, peer, &link);
                        reader = Some(r);
                        client = Some(c);
                        chip.note(BoardEvent::ClientConnected { peer });
                    }
                    (Some(_), None) => {
                        waiting = Some((stream, peer, Instant::now() + HANDOVER));
                    }
                    (Some(holder), Some(_)) => refuse(&mut chip, stream, peer, holder.peer),
                }
            }
            read = read_some(&mut reader, &mut buf) => {
                let n = match read {
                    Ok(n) if n > 0 => n,
                    _ => {
                        gone(&mut chip, &mut client, &mut reader);
                        continue;
                    }
                };
                let Some(c) = client.as_mut() else { continue };
                c.from_client += n as u64;
                let incoming = c.telnet.feed(&buf[..n]);
                let replies = c.telnet.take_replies();
                c.to_client += replies.len() as u64;
                if !replies.is_empty() && c.writer.write_all(&replies).await.is_err() {
                    gone(&mut chip, &mut client, &mut reader);
                    continue;
                }
                let now = Instant::now();
                for item in incoming {
                    // The rate the client's adapter sends at; a link that cannot
                    // carry it distorts the waveform, whatever rate the chip
                    // listens at (its ROM measures the nominal rate at SYNC).
                    let baud = c.telnet.baud();
                    let item = match item {
                        Incoming::Data(bytes) => Incoming::Data(link.faults.carry(&bytes, baud)),
                        other => other,
                    };
                    match item {
                        Incoming::Data(bytes) if link.line_rate => {
                            for piece in bytes.chunks(line::RX_PIECE) {
                                let due = c.rx.send(now, piece.len(), baud);
                                c.to_chip.push_back((due, piece.to_vec(), baud));
                            }
                        }
                        Incoming::Data(bytes) => chip.receive(&bytes, baud)?,
                        Incoming::Port(PortRequest::Dtr(on)) => chip.set_dtr(on),
                        Incoming::Port(PortRequest::Rts(on)) => chip.set_rts(on),
                        Incoming::Port(PortRequest::Purge(what)) => {
                            // 1: what the board sent that the client has not read;
                            // 2: what the client sent that the chip has not had.
                            if what & 1 != 0 {
                                c.to_client_queue.clear();
                                c.tx.clear();
                            }
                            if what & 2 != 0 {
                                c.to_chip.clear();
                                c.rx.clear();
                            }
                        }
                        Incoming::Port(PortRequest::Baud(_)) => {}
                    }
                }
            }
            Some(output) = out_rx.recv() => {
                if let Output::Restart(cause) = output {
                    chip.restart(cause);
                    continue;
                }
                let Some(c) = client.as_mut() else { continue };
                let Output::Uart { bytes, baud: sent_at } = output else { continue };
                // The client's adapter samples the chip's waveform at its own rate.
                let heard_at = link.faults.line_baud(c.telnet.baud());
                let heard = boot::resample(&bytes, sent_at, heard_at);
                if link.line_rate {
                    // Byte by byte as the UART sends them: each piece reaches the
                    // client when its last stop bit is out, so a long dump
                    // streams over the time it takes on the wire.
                    let end = c.tx.send(Instant::now(), bytes.len(), sent_at);
                    let start = end - line::wire_time(bytes.len(), sent_at);
                    for (due, piece) in line::pieces(start, end, &heard) {
                        let mut wire = Vec::new();
                        rfc2217::escape_into(&mut wire, piece);
                        c.to_client_queue.push_back((due, wire));
                    }
                    continue;
                }
                let mut wire = Vec::new();
                rfc2217::escape_into(&mut wire, &heard);
                c.to_client += wire.len() as u64;
                if c.writer.write_all(&wire).await.is_err() {
                    gone(&mut chip, &mut client, &mut reader);
                }
            }
            _ = sleep_until(due) => {
                let Some(c) = client.as_mut() else { continue };
                let now = Instant::now();
                while c.to_chip.front().is_some_and(|(due, ..)| *due <= now) {
                    if let Some((_, bytes, baud)) = c.to_chip.pop_front() {
                        chip.receive(&bytes, baud)?;
                    }
                }
                let mut wire = Vec::new();
                while c.to_client_queue.front().is_some_and(|(due, _)| *due <= now) {
                    if let Some((_, bytes)) = c.to_client_queue.pop_front() {
                        wire.extend(bytes);
                    }
                }
                if !wire.is_empty() {
                    c.to_client += wire.len() as u64;
                    if c.writer.write_all(&wire).await.is_err() {
                        gone(&mut chip, &mut client, &mut reader);
                    }
                }
            }
        }
    }
    chip.stop_firmware();
    Ok(())
}
