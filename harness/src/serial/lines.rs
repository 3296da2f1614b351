//! Serial output as lines: any bytes in, lines out (CR, LF or CRLF ends a line;
//! bytes that are not UTF-8 are replaced, never an error).

/// Longest line kept before it is cut: binary noise has no line endings.
const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    last_was_cr: bool,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Feeds bytes; returns the lines they completed, without line endings.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            match byte {
                b'\n' if self.last_was_cr => {}
                b'\r' | b'\n' => lines.push(self.take()),
                other => {
                    self.partial.push(other);
                    if self.partial.len() >= MAX_LINE {
                        lines.push(self.take());
                    }
                }
            }
            self.last_was_cr = byte == b'\r';
        }
        lines
    }

    /// What is left without a line ending.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_any_bytes() {
        let mut s = LineSplitter::new();
        assert_eq!(s.feed(b"a\r\nb\nc\rd\xff"), vec!["a", "b", "c"]);
        assert_eq!(s.feed(b"\r\n\r\n"), vec!["d\u{fffd}", ""]);
        assert_eq!(s.finish(), None);
        let long = vec![b'x'; MAX_LINE + 5];
        assert_eq!(s.feed(&long).len(), 1);
        assert_eq!(s.finish().unwrap().len(), 5);
    }
}
