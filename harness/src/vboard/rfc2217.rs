//! The server side of Telnet + RFC 2217 (COM-PORT-OPTION, 44) as pyserial's client
//! expects it: it answers WILL 44 with DO 44, echoes every port setting with the
//! server code (+100), acknowledges SET-CONTROL and PURGE-DATA, and doubles 0xFF in
//! data. The decoder is written for hostile input: any byte sequence yields events
//! or is dropped, never a panic.

pub(crate) use crate::telnet::IAC;
use crate::telnet::{Decoder, Token, DO, DONT, SB, SE, WILL, WONT};

const OPT_BINARY: u8 = 0;
const OPT_SGA: u8 = 3;
pub(crate) const OPT_COM_PORT: u8 = 44;

/// What a client asked of the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortRequest {
    /// SET-BAUDRATE (0 = query).
    Baud(u32),
    /// SET-CONTROL: DTR asserted or not.
    Dtr(bool),
    /// SET-CONTROL: RTS asserted or not.
    Rts(bool),
    /// PURGE-DATA (1 receive, 2 transmit, 3 both).
    Purge(u8),
}

/// One decoded piece of the client's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Serial data for the board.
    Data(Vec<u8>),
    /// A port request (its answer is already in [`Server::replies`]).
    Port(PortRequest),
}

/// Telnet/RFC 2217 server state for one connection.
#[derive(Debug)]
pub(crate) struct Server {
    decoder: Decoder,
    replies: Vec<u8>,
    agreed_do: [bool; 256],
    agreed_will: [bool; 256],
    baud: u32,
    data_size: u8,
    parity: u8,
    stop_size: u8,
    flow: u8,
    dtr: bool,
    rts: bool,
    max_baud: Option<u32>,
}

impl Server {
    pub(crate) fn new(baud: u32) -> Server {
        Server {
            decoder: Decoder::default(),
            replies: Vec::new(),
            agreed_do: [false; 256],
            agreed_will: [false; 256],
            baud,
            data_size: 8,
            parity: 1,
            stop_size: 1,
            flow: 1,
            dtr: false,
            rts: false,
            max_baud: None,
        }
    }

    /// An adapter that supports no rate above `max`: requests above it are
    /// answered with the rate the port keeps, as RFC 2217 has servers do.
    pub(crate) fn max_baud(mut self, max: Option<u32>) -> Server {
        self.max_baud = max;
        self
    }

    /// The baud rate the client set.
    pub(crate) fn baud(&self) -> u32 {
        self.baud
    }

    /// Telnet answers to send before anything else (negotiation, acknowledgements).
    pub(crate) fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// Decodes bytes from the client.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Incoming> {
        let mut tokens = Vec::new();
        self.decoder.feed(bytes, &mut |t| tokens.push(t));
        let mut out = Vec::new();
        let mut data = Vec::new();
        for token in tokens {
            match token {
                Token::Data(byte) => data.push(byte),
                Token::Negotiate { verb, option } => self.negotiate(verb, option),
                Token::Sub(sub) => {
                    if let Some(request) = self.subnegotiate(&sub) {
                        if !data.is_empty() {
                            out.push(Incoming::Data(std::mem::take(&mut data)));
                        }
                        out.push(Incoming::Port(request));
                    }
                }
            }
        }
        if !data.is_empty() {
            out.push(Incoming::Data(data));
        }
        out
    }

    fn negotiate(&mut self, verb: u8, option: u8) {
        let supported = matches!(option, OPT_BINARY | OPT_SGA | OPT_COM_PORT);
        match verb {
            WILL => {
                if supported && !self.agreed_do[option as usize] {
                    self.agreed_do[option as usize] = true;
                    self.replies.extend_from_slice(&[IAC, DO, option]);
                } else if !supported {
                    self.replies.extend_from_slice(&[IAC, DONT, option]);
                }
            }
            DO => {
                if supported && !self.agreed_will[option as usize] {
                    self.agreed_will[option as usize] = true;
                    self.replies.extend_from_slice(&[IAC, WILL, option]);
                } else if !supported {
                    // ECHO included: the board does not echo what it receives.
                    self.replies.extend_from_slice(&[IAC, WONT, option]);
                }
            }
            // WONT/DONT: nothing to undo, nothing to answer for options never agreed.
            _ => {}
        }
    }

    fn answer(&mut self, code: u8, value: &[u8]) {
        self.replies
            .extend_from_slice(&[IAC, SB, OPT_COM_PORT, code + 100]);
        for &byte in value {
            self.replies.push(byte);
            if byte == IAC {
                self.replies.push(IAC);
            }
        }
        self.replies.extend_from_slice(&[IAC, SE]);
    }

    fn subnegotiate(&mut self, sub: &[u8]) -> Option<PortRequest> {
        let (&option, rest) = sub.split_first()?;
        if option != OPT_COM_PORT {
            return None;
        }
        let (&code, value) = rest.split_first()?;
        let first = value.first().copied();
        match code {
            0 => {
                self.answer(0, b"hil vboard");
                None
            }
            1 => {
                let requested = value
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                let supported = self.max_baud.is_none_or(|max| requested <= max);
                let changed = requested != 0 && supported;
                if changed {
                    self.baud = requested;
                }
                let baud = self.baud;
                self.answer(1, &baud.to_be_bytes());
                changed.then_some(PortRequest::Baud(requested))
            }
            2..=4 => {
                let slot = match code {
                    2 => &mut self.data_size,
                    3 => &mut self.parity,
                    _ => &mut self.stop_size,
                };
                if let Some(v) = first.filter(|v| *v != 0) {
                    *slot = v;
                }
                let current = *slot;
                self.answer(code, &[current]);
                None
            }
            5 => self.control(first.unwrap_or(0)),
            // Masks: acknowledge; the board never sends line/modem notifications.
            10 | 11 => {
                self.answer(code, &[first.unwrap_or(0)]);
                None
            }
            12 => {
                let what = first.unwrap_or(0);
                self.answer(12, &[what]);
                Some(PortRequest::Purge(what))
            }
            _ => None,
        }
    }

    fn control(&mut self, value: u8) -> Option<PortRequest> {
        let (answer, request) = match value {
            0 => (self.flow, None),
            1..=3 => {
                self.flow = value;
                (value, None)
            }
            4 => (6, None),
            7 => (if self.dtr { 8 } else { 9 }, None),
            8 | 9 => {
                self.dtr = value == 8;
                (value, Some(PortRequest::Dtr(self.dtr)))
            }
            10 => (if self.rts { 11 } else { 12 }, None),
            11 | 12 => {
                self.rts = value == 11;
                (value, Some(PortRequest::Rts(self.rts)))
            }
            other => (other, None),
        };
        self.answer(5, &[answer]);
        request
    }
}

/// Escapes serial data for the Telnet stream (IAC doubling).
pub(crate) fn escape_into(out: &mut Vec<u8>, data: &[u8]) {
    for &byte in data {
        out.push(byte);
        if byte == IAC {
            out.push(IAC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_and_echoes_like_pyserial_wants() {
        let mut server = Server::new(115_200);
        let events = server.feed(&[IAC, WILL, 44, IAC, DO, 44, IAC, DO, 1]);
        assert!(events.is_empty());
        assert_eq!(
            server.take_replies(),
            vec![IAC, DO, 44, IAC, WILL, 44, IAC, WONT, 1]
        );
        // A repeated WILL is not answered again (no negotiation loops).
        server.feed(&[IAC, WILL, 44]);
        assert!(server.take_replies().is_empty());

        let events = server.feed(&[IAC, SB, 44, 1, 0, 1, 0xC2, 0, IAC, SE]);
        assert_eq!(events, vec![Incoming::Port(PortRequest::Baud(115_200))]);
        assert_eq!(
            server.take_replies(),
            vec![IAC, SB, 44, 101, 0, 1, 0xC2, 0, IAC, SE]
        );
        let events = server.feed(&[IAC, SB, 44, 5, 8, IAC, SE, b'a', IAC, IAC, b'b']);
        assert_eq!(
            events,
            vec![
                Incoming::Port(PortRequest::Dtr(true)),
                Incoming::Data(vec![b'a', IAC, b'b'])
            ]
        );
        assert_eq!(server.take_replies(), vec![IAC, SB, 44, 105, 8, IAC, SE]);
    }

    #[test]
    fn a_rate_the_adapter_lacks_is_answered_with_the_rate_it_keeps() {
        let mut server = Server::new(115_200).max_baud(Some(460_800));
        let ask = |baud: u32| {
            let mut bytes = vec![IAC, SB, 44, 1];
            bytes.extend(baud.to_be_bytes());
            bytes.extend([IAC, SE]);
            bytes
        };
        assert!(server.feed(&ask(921_600)).is_empty());
        assert_eq!(
            server.take_replies(),
            vec![IAC, SB, 44, 101, 0, 1, 0xC2, 0, IAC, SE]
        );
        assert_eq!(server.baud(), 115_200);
        assert_eq!(
            server.feed(&ask(460_800)),
            vec![Incoming::Port(PortRequest::Baud(460_800))]
        );
        assert_eq!(server.baud(), 460_800);
    }

    #[test]
    fn garbage_never_panics() {
        let mut server = Server::new(115_200);
        let mut seed = 0x1234_5678u32;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                if seed.is_multiple_of(3) {
                    255
                } else {
                    (seed % 7) as u8 * 40
                }
            })
            .collect();
        server.feed(&bytes);
        server.feed(&[
            IAC, SB, 44, IAC, SE, IAC, SB, IAC, SE, IAC, SB, 44, 1, IAC, SE,
        ]);
    }
}
