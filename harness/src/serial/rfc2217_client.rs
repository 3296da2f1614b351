//! An RFC 2217 client implementing [`serialport::SerialPort`], so espflash (or any
//! code written for a local port) drives a remote or virtual board unchanged.
//!
//! Outgoing Telnet negotiation and COM-PORT-OPTION requests are serialised with the
//! `rfc2217-rs` crate. Incoming bytes go through this module's own decoder: the
//! crate's parser panics on some malformed sub-negotiations (unknown option codes,
//! empty values), and a port must turn whatever a server sends into data or an
//! error, never a panic.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rfc2217_rs::negotiation::{Intent, Option as TelnetOption};
use rfc2217_rs::{Negotiation, Subnegotiation};
use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};

use super::SerialError;
use crate::telnet::{Decoder, Token, DO, IAC, WILL};

const COM_PORT: u8 = 44;
/// How long negotiation and acknowledgements may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the line settings may take to be answered when the port opens.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client keeps of the server's Telnet stream: data not read yet, the
/// options agreed, the acknowledgements seen. It never touches the socket: the
/// answers it owes the server are returned by [`Negotiator::absorb`].
#[derive(Debug)]
pub(crate) struct Negotiator {
    decoder: Decoder,
    pub(crate) rx: VecDeque<u8>,
    /// Acknowledgements seen, per server code (101..=112).
    acks: [u64; 256],
    /// The rate in the server's last SET-BAUDRATE answer.
    baud_answer: Option<u32>,
    sent_will: [bool; 256],
    sent_do: [bool; 256],
    pub(crate) com_port_accepted: bool,
}

impl Negotiator {
    /// The state right after the client's opening offer (WILL COM-PORT, WILL
    /// BINARY, DO BINARY), which it sends itself.
    pub(crate) fn new() -> Negotiator {
        let mut negotiator = Negotiator {
            decoder: Decoder::default(),
            rx: VecDeque::new(),
            acks: [0; 256],
            baud_answer: None,
            sent_will: [false; 256],
            sent_do: [false; 256],
            com_port_accepted: false,
        };
        negotiator.sent_will[COM_PORT as usize] = true;
        negotiator.sent_will[0] = true;
        negotiator.sent_do[0] = true;
        negotiator
    }

    /// How many acknowledgements with server code `code` arrived.
    pub(crate) fn acks(&self, code: u8) -> u64 {
        self.acks[code as usize]
    }

    /// Takes in bytes from the server; returns the Telnet answers owed to it.
    pub(crate) fn absorb(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut tokens = Vec::new();
        self.decoder.feed(bytes, &mut |t| tokens.push(t));
        let mut replies = Vec::new();
        for token in tokens {
            match token {
                Token::Data(byte) => self.rx.push_back(byte),
                Token::Negotiate { verb, option } => {
                    let supported = matches!(option, 0 | 3 | COM_PORT);
                    match verb {
                        DO if supported => {
                            if option == COM_PORT {
                                self.com_port_accepted = true;
                            }
                            if !self.sent_will[option as usize] {
                                self.sent_will[option as usize] = true;
                                replies.extend(Inner::negotiation(Intent::Will, option));
                            }
                        }
                        DO => replies.extend(Inner::negotiation(Intent::Wont, option)),
                        WILL if supported && !self.sent_do[option as usize] => {
                            self.sent_do[option as usize] = true;
                            replies.extend(Inner::negotiation(Intent::Do, option));
                        }
                        WILL if supported => {}
                        WILL => replies.extend(Inner::negotiation(Intent::Dont, option)),
                        _ => {}
                    }
                }
                Token::Sub(sub) => {
                    if let [COM_PORT, code, ..] = sub[..] {
                        self.acks[code as usize] += 1;
                        if let [_, 101, a, b, c, d, ..] = sub[..] {
                            self.baud_answer = Some(u32::from_be_bytes([a, b, c, d]));
                        }
                    }
                }
            }
        }
        replies
    }
}

#[derive(Debug)]
struct Inner {
    stream: TcpStream,
    telnet: Negotiator,
    baud: u32,
    data_bits: DataBits,
    parity: Parity,
    stop_bits: StopBits,
    flow: FlowControl,
    timeout: Duration,
    /// Per option (1..=4), whether the server answered it when the port was
    /// opened: later requests for an option it never answers are not waited for.
    answers: [bool; 5],
}

/// Which COM-PORT-OPTION requests a server answers (RFC 2217 has it answer every
/// one; servers in front of a tty without modem lines never answer SET-CONTROL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acknowledged {
    /// SET-BAUDRATE (option 1).
    pub baud: bool,
    /// SET-DATASIZE (option 2).
    pub data_size: bool,
    /// SET-PARITY (option 3).
    pub parity: bool,
    /// SET-STOPSIZE (option 4).
    pub stop_size: bool,
    /// SET-CONTROL (option 5): DTR, RTS, break and flow control.
    pub control: bool,
}

/// A serial port reached over RFC 2217 (`rfc2217://host:port`).
#[derive(Debug, Clone)]
pub struct Rfc2217Port {
    name: String,
    inner: Arc<Mutex<Inner>>,
}

fn io_to_serial(error: io::Error) -> serialport::Error {
    serialport::Error::from(error)
}

impl Inner {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn negotiation(intent: Intent, option: u8) -> [u8; 3] {
        let mut buf = [0u8; 3];
        let option = match option {
            0 => TelnetOption::Binary,
            1 => TelnetOption::Echo,
            3 => TelnetOption::SuppressGoAhead,
            44 => TelnetOption::ComPort,
            other => TelnetOption::Unsupported(other),
        };
        Negotiation { intent, option }.serialize(&mut buf);
        buf
    }

    fn request(&mut self, sub: Subnegotiation) -> io::Result<()> {
        let mut buf = [0u8; rfc2217_rs::subnegotiation::MAX_SIZE];
        let len = sub.serialize_client(&mut buf);
        self.send(&buf[..len])
    }

    /// Reads what the server sent, waiting until `deadline` (or not at all).
    fn pump(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        let read = match deadline {
            None => {
                self.stream.set_nonblocking(true)?;
                let r = self.stream.read(&mut buf);
                self.stream.set_nonblocking(false)?;
                r
            }
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                self.stream.set_read_timeout(Some(left))?;
                self.stream.read(&mut buf)
            }
        };
        match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the RFC 2217 server closed the connection",
            )),
            Ok(n) => {
                self.decode(&buf[..n])?;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn decode(&mut self, bytes: &[u8]) -> io::Result<()> {
        let replies = self.telnet.absorb(bytes);
        if !replies.is_empty() {
            self.send(&replies)?;
        }
        Ok(())
    }

    /// Asks for `baud` and checks the server's answer: RFC 2217 has a server answer
    /// with the rate it applied, so another rate means the port refused.
    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.request_acked(Subnegotiation::SetBaudRate(baud), 1)?;
        self.check_baud(baud)
    }

    /// Whether the server's last SET-BAUDRATE answer kept `baud`.
    fn check_baud(&mut self, baud: u32) -> io::Result<()> {
        match self.telnet.baud_answer {
            // 0 would be a query's answer; servers that answer so say nothing.
            Some(kept) if kept != 0 && kept != baud => {
                self.baud = kept;
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the RFC 2217 server kept {kept} baud instead of {baud}"),
                ))
            }
            _ => {
                self.baud = baud;
                Ok(())
            }
        }
    }

    /// Sets `baud` and 8N1 in one round trip. The rate must be answered (the
    /// answer says whether the port took it); the framing options are recorded
    /// as answered or not, and a server that never answers them still works.
    fn open_line(&mut self, baud: u32) -> io::Result<()> {
        let before: Vec<u64> = (1..=4).map(|code| self.telnet.acks(code + 100)).collect();
        self.request(Subnegotiation::SetBaudRate(baud))?;
        self.request(Subnegotiation::SetDataSize(8))?;
        self.request(Subnegotiation::SetParity(1))?;
        self.request(Subnegotiation::SetStopSize(1))?;
        let answered =
            |telnet: &Negotiator, code: u8| telnet.acks(code + 100) > before[usize::from(code) - 1];
        // ser2net with an RFC 2217 connector answers only once it has reached
        // the board again, which takes it a few seconds after a client left.
        let deadline = Instant::now() + OPEN_TIMEOUT;
        while !(1..=4).all(|code| answered(&self.telnet, code)) && Instant::now() < deadline {
            self.pump(Some(deadline))?;
        }
        for code in 1..=4u8 {
            self.answers[usize::from(code)] = answered(&self.telnet, code);
        }
        if !self.answers[1] {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the RFC 2217 server did not acknowledge option 1 (SET-BAUDRATE)",
            ));
        }
        self.check_baud(baud)
    }

    /// A framing option (2..=4): waited for when the server answers it.
    fn request_option(&mut self, sub: Subnegotiation, code: u8) -> io::Result<()> {
        if self.answers[usize::from(code)] {
            self.request_acked(sub, code)
        } else {
            self.request(sub)
        }
    }

    /// SET-CONTROL (DTR, RTS, break, flow control) is sent and not waited for,
    /// as labgrid's client (pyserial's `ign_set_control`) does: ser2net in front
    /// of a pty never answers it, and a reset pulse's width is the time between
    /// two requests, which the server applies in order either way.
    fn control(&mut self, value: u8) -> io::Result<()> {
        self.request(Subnegotiation::SetControl(value))?;
        // Take in whatever answers already arrived, so they do not pile up.
        self.pump(None)
    }

    /// Sends a COM-PORT request and waits for the server's answer (code + 100).
    fn request_acked(&mut self, sub: Subnegotiation, code: u8) -> io::Result<()> {
        let before = self.telnet.acks(code + 100);
        self.request(sub)?;
        let deadline = Instant::now() + NETWORK_TIMEOUT;
        while self.telnet.acks(code + 100) == before {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the RFC 2217 server did not acknowledge option {code}"),
                ));
            }
            self.pump(Some(deadline))?;
        }
        Ok(())
    }
}

impl Rfc2217Port {
    /// Connects to `host:port`, negotiates RFC 2217 and sets 8N1 at `baud`. The
    /// control lines are left as the server has them.
    pub fn open(addr: &str, baud: u32) -> Result<Rfc2217Port, SerialError> {
        let fail = |source: io::Error| SerialError::Rfc2217Connect {
            addr: addr.to_string(),
            source,
        };
        let socket = addr
            .to_socket_addrs()
            .map_err(fail)?
            .next()
            .ok_or_else(|| fail(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        let stream = TcpStream::connect_timeout(&socket, NETWORK_TIMEOUT).map_err(fail)?;
        stream.set_nodelay(true).map_err(fail)?;
        let mut inner = Inner {
            stream,
            telnet: Negotiator::new(),
            baud,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow: FlowControl::None,
            timeout: Duration::from_millis(100),
            answers: [false; 5],
        };
        let mut hello = Vec::new();
        hello.extend(Inner::negotiation(Intent::Will, COM_PORT));
        hello.extend(Inner::negotiation(Intent::Will, 0));
        hello.extend(Inner::negotiation(Intent::Do, 0));
        inner.send(&hello).map_err(fail)?;
        let deadline = Instant::now() + NETWORK_TIMEOUT;
        while !inner.telnet.com_port_accepted {
            if Instant::now() >= deadline {
                return Err(SerialError::NotRfc2217 {
                    addr: addr.to_string(),
                });
            }
            inner.pump(Some(deadline)).map_err(fail)?;
        }
        inner.open_line(baud).map_err(fail)?;
        Ok(Rfc2217Port {
            name: format!("rfc2217://{addr}"),
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Which options the server answered so far: the framing ones when the port
    /// was opened, SET-CONTROL once any control request was answered. Answers
    /// still in flight are read first, waiting at most `wait`.
    pub fn acknowledged(&self, wait: Duration) -> Acknowledged {
        let mut inner = self.lock();
        let deadline = Instant::now() + wait;
        while inner.telnet.acks(105) == 0 && Instant::now() < deadline {
            if inner.pump(Some(deadline)).is_err() {
                break;
            }
        }
        Acknowledged {
            baud: inner.answers[1],
            data_size: inner.answers[2],
            parity: inner.answers[3],
            stop_size: inner.answers[4],
            control: inner.telnet.acks(105) > 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Read for Rfc2217Port {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut inner = self.lock();
        let deadline = Instant::now() + inner.timeout;
        loop {
            if !inner.telnet.rx.is_empty() {
                let n = buf.len().min(inner.telnet.rx.len());
                for (slot, byte) in buf.iter_mut().zip(inner.telnet.rx.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "serial read timed out",
                ));
            }
            inner.pump(Some(deadline))?;
        }
    }
}

impl Write for Rfc2217Port {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut escaped = Vec::with_capacity(buf.len() + 8);
        for &byte in buf {
            escaped.push(byte);
            if byte == IAC {
                escaped.push(IAC);
            }
        }
        self.lock().send(&escaped)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().stream.flush()
    }
}

impl SerialPort for Rfc2217Port {
    fn name(&self) -> Option<String> {
        Some(self.name.clone())
    }

    fn baud_rate(&self) -> serialport::Result<u32> {
        Ok(self.lock().baud)
    }

    fn data_bits(&self) -> serialport::Result<DataBits> {
        Ok(self.lock().data_bits)
    }

    fn flow_control(&self) -> serialport::Result<FlowControl> {
        Ok(self.lock().flow)
    }

    fn parity(&self) -> serialport::Result<Parity> {
        Ok(self.lock().parity)
    }

    fn stop_bits(&self) -> serialport::Result<StopBits> {
        Ok(self.lock().stop_bits)
    }

    fn timeout(&self) -> Duration {
        self.lock().timeout
    }

    fn set_baud_rate(&mut self, baud_rate: u32) -> serialport::Result<()> {
        self.lock().set_baud(baud_rate).map_err(io_to_serial)
    }

    fn set_data_bits(&mut self, data_bits: DataBits) -> serialport::Result<()> {
        let mut inner = self.lock();
        inner
            .request_option(Subnegotiation::SetDataSize(u8::from(data_bits)), 2)
            .map_err(io_to_serial)?;
        inner.data_bits = data_bits;
        Ok(())
    }

    fn set_flow_control(&mut self, flow_control: FlowControl) -> serialport::Result<()> {
        let value = match flow_control {
            FlowControl::None => 1,
            FlowControl::Software => 2,
            FlowControl::Hardware => 3,
        };
        let mut inner = self.lock();
        inner.control(value).map_err(io_to_serial)?;
        inner.flow = flow_control;
        Ok(())
    }

    fn set_parity(&mut self, parity: Parity) -> serialport::Result<()> {
        let value = match parity {
            Parity::None => 1,
            Parity::Odd => 2,
            Parity::Even => 3,
        };
        let mut inner = self.lock();
        inner
            .request_option(Subnegotiation::SetParity(value), 3)
            .map_err(io_to_serial)?;
        inner.parity = parity;
        Ok(())
    }

    fn set_stop_bits(&mut self, stop_bits: StopBits) -> serialport::Result<()> {
        let value = match stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
        };
        let mut inner = self.lock();
        inner
            .request_option(Subnegotiation::SetStopSize(value), 4)
            .map_err(io_to_serial)?;
        inner.stop_bits = stop_bits;
        Ok(())
    }

    fn set_timeout(&mut self, timeout: Duration) -> serialport::Result<()> {
        self.lock().timeout = timeout;
        Ok(())
    }

    fn write_request_to_send(&mut self, level: bool) -> serialport::Result<()> {
        let value = if level { 11 } else { 12 };
        self.lock().control(value).map_err(io_to_serial)
    }

    fn write_data_terminal_ready(&mut self, level: bool) -> serialport::Result<()> {
        let value = if level { 8 } else { 9 };
        self.lock().control(value).map_err(io_to_serial)
    }

    // Modem status lines: a NodeMCU leaves them unconnected; report them inactive.
    fn read_clear_to_send(&mut self) -> serialport::Result<bool> {
        Ok(false)
    }

    fn read_data_set_ready(&mut self) -> serialport::Result<bool> {
        Ok(false)
    }

    fn read_ring_indicator(&mut self) -> serialport::Result<bool> {
        Ok(false)
    }

    fn read_carrier_detect(&mut self) -> serialport::Result<bool> {
        Ok(false)
    }

    fn bytes_to_read(&self) -> serialport::Result<u32> {
        let mut inner = self.lock();
        inner.pump(None).map_err(io_to_serial)?;
        Ok(inner.telnet.rx.len() as u32)
    }

    fn bytes_to_write(&self) -> serialport::Result<u32> {
        Ok(0)
    }

    fn clear(&self, buffer_to_clear: ClearBuffer) -> serialport::Result<()> {
        let mut inner = self.lock();
        let code = match buffer_to_clear {
            ClearBuffer::Input => 1,
            ClearBuffer::Output => 2,
            ClearBuffer::All => 3,
        };
        if matches!(buffer_to_clear, ClearBuffer::Input | ClearBuffer::All) {
            // Take in what already arrived first, so it is dropped too.
            inner.pump(None).map_err(io_to_serial)?;
            inner.telnet.rx.clear();
        }
        // Not waited for: espflash clears before every command, and the answer
        // carries nothing the client needs.
        inner
            .request(Subnegotiation::PurgeData(code))
            .map_err(io_to_serial)
    }

    fn try_clone(&self) -> serialport::Result<Box<dyn SerialPort>> {
        Ok(Box::new(self.clone()))
    }

    fn set_break(&self) -> serialport::Result<()> {
        self.lock().control(5).map_err(io_to_serial)
    }

    fn clear_break(&self) -> serialport::Result<()> {
        self.lock().control(6).map_err(io_to_serial)
    }
}
