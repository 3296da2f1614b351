//! The Telnet byte stream (RFC 854/855) both ends of RFC 2217 share: data with
//! 0xFF doubled, option negotiation, and sub-negotiations. Written for hostile
//! input: any byte sequence yields tokens or is dropped, never a panic.

/// Interpret As Command.
pub(crate) const IAC: u8 = 255;
pub(crate) const DONT: u8 = 254;
pub(crate) const DO: u8 = 253;
pub(crate) const WONT: u8 = 252;
pub(crate) const WILL: u8 = 251;
pub(crate) const SB: u8 = 250;
pub(crate) const SE: u8 = 240;

/// Longest sub-negotiation kept; longer ones are truncated (RFC 2217's are short).
pub(crate) const MAX_SB: usize = 64;

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A data byte (a doubled IAC arrives as one 0xFF).
    Data(u8),
    /// WILL/WONT/DO/DONT and the option.
    Negotiate {
        /// The verb (`WILL`, `WONT`, `DO`, `DONT`).
        verb: u8,
        /// The option number.
        option: u8,
    },
    /// A complete sub-negotiation's bytes (option first), IAC doubling undone.
    Sub(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Data,
    Iac,
    Negotiate(u8),
    Sub,
    SubIac,
}

/// Splits a Telnet stream into tokens, across reads.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    state: State,
    sub: Vec<u8>,
}

impl Decoder {
    /// Decodes `bytes`, handing each complete token to `on_token`.
    pub(crate) fn feed(&mut self, bytes: &[u8], on_token: &mut dyn FnMut(Token)) {
        for &byte in bytes {
            match self.state {
                State::Data if byte == IAC => self.state = State::Iac,
                State::Data => on_token(Token::Data(byte)),
                State::Iac => {
                    self.state = State::Data;
                    match byte {
                        IAC => on_token(Token::Data(IAC)),
                        WILL | WONT | DO | DONT => self.state = State::Negotiate(byte),
                        SB => {
                            self.sub.clear();
                            self.state = State::Sub;
                        }
                        // NOP, break, go-ahead and the like carry nothing for a UART.
                        _ => {}
                    }
                }
                State::Negotiate(verb) => {
                    self.state = State::Data;
                    on_token(Token::Negotiate { verb, option: byte });
                }
                State::Sub if byte == IAC => self.state = State::SubIac,
                State::Sub => {
                    if self.sub.len() < MAX_SB {
                        self.sub.push(byte);
                    }
                }
                State::SubIac => match byte {
                    IAC => {
                        if self.sub.len() < MAX_SB {
                            self.sub.push(IAC);
                        }
                        self.state = State::Sub;
                    }
                    SE => {
                        self.state = State::Data;
                        on_token(Token::Sub(std::mem::take(&mut self.sub)));
                    }
                    // A malformed sub-negotiation: drop it and resynchronise on data.
                    _ => self.state = State::Data,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(chunks: &[&[u8]]) -> Vec<Token> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut |t| out.push(t));
        }
        out
    }

    #[test]
    fn data_negotiation_and_subnegotiation_split_across_reads() {
        let got = tokens(&[
            b"a\xff",
            b"\xffb\xff\xfb",
            b",\xff\xfa,\x01\xff\xff\xff",
            b"\xf0c",
        ]);
        assert_eq!(
            got,
            vec![
                Token::Data(b'a'),
                Token::Data(0xff),
                Token::Data(b'b'),
                Token::Negotiate {
                    verb: WILL,
                    option: 44
                },
                Token::Sub(vec![44, 1, 0xff]),
                Token::Data(b'c'),
            ]
        );
    }

    #[test]
    fn garbage_never_panics_and_overlong_subnegotiations_are_truncated() {
        let noise: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        tokens(&[&noise]);
        let mut long = vec![IAC, SB];
        long.extend(std::iter::repeat_n(7, 500));
        long.extend([IAC, SE]);
        let got = tokens(&[&long]);
        assert_eq!(got, vec![Token::Sub(vec![7; MAX_SB])]);
    }
}
