//! Misbehaviour a test can ask of a virtual board, to prove that a client copes
//! with what real boards, adapters and cables do now and then.

/// One fault. A board can carry several (see [`super::BoardOptions::fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The serial adapter does not support rates above this one: an RFC 2217
    /// SET-BAUDRATE above it is answered with the rate the port keeps.
    RefuseBaudAbove(u32),
    /// The adapter or cable cannot hold rates above this one: the port accepts
    /// them, but every byte either way arrives as a UART sampling 10 % off
    /// would read it, garbage (a UART tolerates a few percent), whatever rate
    /// the chip picked: the ROM's auto-baud does not help.
    GarbleAbove(u32),
    /// Flash that does not keep what was written: the next `times` writes that
    /// reach `offset` store one byte there flipped.
    CorruptWrite {
        /// The flash address of the byte.
        offset: u32,
        /// How many writes are spoiled before the flash behaves again.
        times: u32,
    },
    /// The flasher stub stops answering when it receives its `n`th data block
    /// (0-based, FLASH_DATA or FLASH_DEFL_DATA): that block and everything after
    /// it are ignored until the next reset, as if the stub had crashed.
    StubHangsAtBlock(u32),
    /// The supply dips this long after every start of the firmware: the chip
    /// resets as at power-on (`rst cause:1`, the ROM's lines at 74880 baud,
    /// garbage to a console at 115200), a reboot nobody asked for.
    BrownOutAfter(std::time::Duration),
}

/// The faults of one board, looked up where they apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    /// The highest rate the adapter accepts, if it has a limit.
    pub(crate) fn max_baud(&self) -> Option<u32> {
        self.0
            .iter()
            .filter_map(|f| match f {
                Fault::RefuseBaudAbove(max) => Some(*max),
                _ => None,
            })
            .min()
    }

    /// The rate the adapter really runs at when asked for `baud`.
    pub(crate) fn line_baud(&self, baud: u32) -> u32 {
        let garbles = self
            .0
            .iter()
            .any(|f| matches!(f, Fault::GarbleAbove(max) if baud > *max));
        if garbles {
            baud - baud / 10
        } else {
            baud
        }
    }

    /// What the chip's UART receives of `bytes` the client sent at `baud`.
    pub(crate) fn carry(&self, bytes: &[u8], baud: u32) -> Vec<u8> {
        match self.line_baud(baud) {
            line if line == baud => bytes.to_vec(),
            line => hil_contract::uart::resample(bytes, line, baud),
        }
    }

    /// The data block at which the stub stops answering, if it does.
    pub(crate) fn stub_hang(&self) -> Option<u32> {
        self.0.iter().find_map(|f| match f {
            Fault::StubHangsAtBlock(n) => Some(*n),
            _ => None,
        })
    }

    /// How long after each firmware start the supply browns out, if it does.
    pub(crate) fn brown_out_after(&self) -> Option<std::time::Duration> {
        self.0.iter().find_map(|f| match f {
            Fault::BrownOutAfter(after) => Some(*after),
            _ => None,
        })
    }

    /// Flash corruption: (offset, times).
    pub(crate) fn corrupt_writes(&self) -> Vec<(u32, u32)> {
        self.0
            .iter()
            .filter_map(|f| match f {
                Fault::CorruptWrite { offset, times } => Some((*offset, *times)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let mut faults = Faults::default();
        assert_eq!(faults.max_baud(), None);
        assert_eq!(faults.line_baud(921_600), 921_600);
        faults.push(Fault::RefuseBaudAbove(460_800));
        faults.push(Fault::GarbleAbove(230_400));
        faults.push(Fault::StubHangsAtBlock(2));
        assert_eq!(faults.max_baud(), Some(460_800));
        assert_eq!(faults.line_baud(230_400), 230_400);
        assert_eq!(faults.line_baud(460_800), 414_720);
        assert_eq!(faults.stub_hang(), Some(2));
        assert!(faults.corrupt_writes().is_empty());
        assert_eq!(faults.brown_out_after(), None);
        faults.push(Fault::BrownOutAfter(std::time::Duration::from_secs(3)));
        assert_eq!(
            faults.brown_out_after(),
            Some(std::time::Duration::from_secs(3))
        );
    }
}
