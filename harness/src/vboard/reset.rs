//! The NodeMCU auto-reset circuit: two transistors between the adapter's DTR/RTS
//! and the chip's EN and GPIO0.
//!
//! EN is pulled low iff RTS is asserted and DTR is not; GPIO0 iff DTR is asserted and
//! RTS is not. With both (or neither) asserted the transistors leave both pins high.
//! Over RFC 2217 the two lines change in separate messages, 50 ms or more apart, so
//! "both asserted" is modelled as "the pins keep their levels": that is how the
//! transient through (1,1) behaves on a real board, where it lasts microseconds and
//! the RC on EN holds the level. The ROM samples GPIO0 when EN rises.

/// What the chip does when EN rises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BootMode {
    /// GPIO0 low: the ROM serial loader (`boot mode:(1,x)`).
    Download,
    /// GPIO0 high: boot the image in flash (`boot mode:(3,x)`).
    Flash,
}

/// A change of the chip's state caused by the control lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// EN went low: the chip stops.
    HeldInReset,
    /// EN went high: the chip starts in this mode.
    Released(BootMode),
}

/// Line and pin levels; `true` = high / asserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Circuit {
    dtr: bool,
    rts: bool,
    en_high: bool,
    gpio0_high: bool,
}

impl Circuit {
    /// Lines released, chip running.
    pub(crate) fn new() -> Circuit {
        Circuit {
            dtr: false,
            rts: false,
            en_high: true,
            gpio0_high: true,
        }
    }

    /// Sets DTR; returns the edge it caused, if any.
    pub(crate) fn set_dtr(&mut self, asserted: bool) -> Option<Edge> {
        self.dtr = asserted;
        self.settle()
    }

    /// Sets RTS; returns the edge it caused, if any.
    pub(crate) fn set_rts(&mut self, asserted: bool) -> Option<Edge> {
        self.rts = asserted;
        self.settle()
    }

    /// Whether the chip is held in reset.
    #[cfg(test)]
    pub(crate) fn in_reset(&self) -> bool {
        !self.en_high
    }

    fn settle(&mut self) -> Option<Edge> {
        let was_high = self.en_high;
        match (self.dtr, self.rts) {
            (false, true) => {
                self.en_high = false;
                self.gpio0_high = true;
            }
            (true, false) => {
                self.en_high = true;
                self.gpio0_high = false;
            }
            (false, false) => {
                self.en_high = true;
                self.gpio0_high = true;
            }
            (true, true) => {}
        }
        match (was_high, self.en_high) {
            (true, false) => Some(Edge::HeldInReset),
            (false, true) => Some(Edge::Released(if self.gpio0_high {
                BootMode::Flash
            } else {
                BootMode::Download
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(circuit: &mut Circuit, steps: &[u8]) -> Vec<Edge> {
        steps
            .iter()
            .filter_map(|step| match step {
                8 => circuit.set_dtr(true),
                9 => circuit.set_dtr(false),
                11 => circuit.set_rts(true),
                12 => circuit.set_rts(false),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn esptool_classic_reset_enters_download_mode() {
        let mut circuit = Circuit::new();
        assert_eq!(
            run(&mut circuit, &[9, 11, 9, 8, 12, 8, 9]),
            vec![Edge::HeldInReset, Edge::Released(BootMode::Download)]
        );
    }

    #[test]
    fn hard_reset_boots_from_flash() {
        let mut circuit = Circuit::new();
        assert_eq!(
            run(&mut circuit, &[11, 9, 12, 9]),
            vec![Edge::HeldInReset, Edge::Released(BootMode::Flash)]
        );
    }

    #[test]
    fn pyserial_open_does_not_reset() {
        // pyserial asserts DTR then RTS when it opens the port.
        let mut circuit = Circuit::new();
        assert!(run(&mut circuit, &[8, 11]).is_empty());
        assert!(!circuit.in_reset());
    }
}
