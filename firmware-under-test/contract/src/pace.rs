//! How fast a virtual board runs: as fast as the host allows, or at a real
//! ESP8266's pace.

use std::fmt;
use std::str::FromStr;

/// The pace of a virtual board and its firmware twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pace {
    /// As fast as the host runs it: bytes at once, no computing time (the
    /// firmware's own timers and timeouts still hold).
    #[default]
    Default,
    /// A real board's pace: the UART at its line rate, and the time an ESP8266
    /// at 80 MHz takes to boot, join Wi-Fi, sync its clock and handshake.
    Hardware,
}

impl Pace {
    /// Every pace, in documentation order.
    pub const ALL: &'static [Pace] = &[Pace::Default, Pace::Hardware];

    /// The name on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Pace::Default => "default",
            Pace::Hardware => "hardware",
        }
    }
}

impl fmt::Display for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pace {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Pace::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| "default, hardware".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for pace in Pace::ALL {
            assert_eq!(pace.as_str().parse::<Pace>(), Ok(*pace));
        }
        assert_eq!(Pace::default(), Pace::Default);
        assert!("fast".parse::<Pace>().is_err());
    }
}
