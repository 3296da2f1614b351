//! SLIP framing as the ESP8266 serial loader uses it: every frame starts and ends
//! with C0; C0 and DB inside are sent as DB DC and DB DD. Bytes outside a frame are
//! noise and are counted, not kept.

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;

/// Largest frame the decoder keeps (longer ones are dropped): a 16 KB stub
/// block plus its header, with room to spare.
pub const MAX_FRAME: usize = 0x4000 + 0x400;

/// Encodes one frame, delimiters included.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 32 + 2);
    out.push(END);
    for &byte in payload {
        match byte {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            other => out.push(other),
        }
    }
    out.push(END);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    Inside,
    Escape,
    /// A frame grew past [`MAX_FRAME`]: skip to its end.
    Overflow,
}

/// Incremental decoder: feed it bytes as they arrive, get whole frames back.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    frame: Vec<u8>,
    noise: u64,
}

impl Decoder {
    /// A decoder outside any frame.
    pub fn new() -> Decoder {
        Decoder {
            state: State::Outside,
            frame: Vec::new(),
            noise: 0,
        }
    }

    /// Forgets a partial frame.
    pub fn clear(&mut self) {
        self.state = State::Outside;
        self.frame.clear();
    }

    /// Bytes skipped outside frames (and in overlong or badly escaped frames) so far.
    pub fn noise(&self) -> u64 {
        self.noise
    }

    /// Feeds bytes; returns the complete frames they finished.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for &byte in bytes {
            match (self.state, byte) {
                (State::Outside, END) => self.state = State::Inside,
                (State::Outside, _) => self.noise += 1,
                (State::Inside, END) => {
                    // C0 C0: the first was the end of nothing, the second a start.
                    if !self.frame.is_empty() {
                        frames.push(std::mem::take(&mut self.frame));
                        self.state = State::Outside;
                    }
                }
                (State::Inside, ESC) => self.state = State::Escape,
                (State::Inside, other) => self.push(other),
                (State::Escape, ESC_END) => self.push(END),
                (State::Escape, ESC_ESC) => self.push(ESC),
                (State::Escape, END) => {
                    // A broken escape: drop the frame, and treat this C0 as a new start.
                    self.noise += self.frame.len() as u64 + 1;
                    self.frame.clear();
                    self.state = State::Inside;
                }
                (State::Escape, _) => {
                    self.noise += self.frame.len() as u64 + 2;
                    self.frame.clear();
                    self.state = State::Outside;
                }
                (State::Overflow, END) => self.state = State::Outside,
                (State::Overflow, _) => self.noise += 1,
            }
        }
        frames
    }

    fn push(&mut self, byte: u8) {
        if self.frame.len() >= MAX_FRAME {
            self.noise += self.frame.len() as u64 + 1;
            self.frame.clear();
            self.state = State::Overflow;
        } else {
            self.frame.push(byte);
            self.state = State::Inside;
        }
    }
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_escapes_and_noise() {
        let payload = [1, END, 2, ESC, 3];
        let mut wire = b"garbage".to_vec();
        wire.extend(encode(&payload));
        wire.extend_from_slice(&[0x55, 0x55]);
        wire.extend(encode(b"x"));
        let mut decoder = Decoder::new();
        let (a, b) = wire.split_at(5);
        let mut frames = decoder.feed(a);
        frames.extend(decoder.feed(b));
        assert_eq!(frames, vec![payload.to_vec(), b"x".to_vec()]);
        assert_eq!(decoder.noise(), 9);
    }

    #[test]
    fn bad_escape_drops_the_frame() {
        let mut decoder = Decoder::new();
        let frames = decoder.feed(&[END, 1, ESC, 7, 2, END, END, 3, END]);
        assert_eq!(frames, vec![vec![3]]);
    }
}
