//! Raising the link's rate once the stub runs, and stepping down when the port
//! or the link cannot hold a rate (CH340 adapters and long cables often cannot
//! hold 921600).

use std::time::Duration;

use hil_contract::esp8266::{CHIP_MAGIC, CHIP_MAGIC_REG};

use super::stub_client::{StubClient, StubFailure};

/// The rate `hil flash` asks for when told nothing else: what PlatformIO and most
/// people give esptool for an ESP8266.
pub const DEFAULT_BAUD: u32 = 921_600;
pub use hil_contract::esp8266::LOADER_BAUD;
/// The rates tried, in order, below the one asked for.
const STANDARD: [u32; 4] = [921_600, 460_800, 230_400, LOADER_BAUD];

/// The stub switches about 10 ms after its answer; give it that and a margin
/// before talking at the new rate.
const SETTLE: Duration = Duration::from_millis(20);
/// How long to wait for the first answer at a new rate.
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// Why a rate was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaudFailure {
    /// The port (the adapter, or the RFC 2217 server) does not support it.
    PortRefused,
    /// The stub switched, but nothing intelligible came back at that rate.
    NoAnswer,
}

/// A rate tried and given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaudAttempt {
    /// The rate.
    pub baud: u32,
    /// What went wrong.
    pub failure: BaudFailure,
}

/// The rate a flash run used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaudReport {
    /// What was asked for.
    pub requested: u32,
    /// What the data went at.
    pub used: u32,
    /// Higher rates tried first and given up, in order.
    pub fell_back: Vec<BaudAttempt>,
}

/// `requested`, then the standard rates below it, down to (excluding) `start`.
/// A rate below `start` is tried alone (a slow link asked for on purpose).
pub(crate) fn ladder(requested: u32, start: u32) -> Vec<u32> {
    if requested <= start {
        return if requested < start && requested > 0 {
            vec![requested]
        } else {
            Vec::new()
        };
    }
    let mut rates = vec![requested];
    rates.extend(
        STANDARD
            .iter()
            .copied()
            .filter(|rate| *rate < requested && *rate > start),
    );
    rates
}

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Both ends run at the new rate.
    Switched,
    /// Nothing changed: the port refused the rate before the stub was asked.
    Refused,
    /// Both ends are back at the old rate after a failure at the new one.
    Recovered,
    /// The stub is somewhere the harness cannot reach: reconnect.
    Lost,
}

/// Whether the stub answers at the link's current rate.
fn answers(client: &mut StubClient) -> Result<bool, StubFailure> {
    for _ in 0..2 {
        client.clear_input()?;
        match client.read_reg(CHIP_MAGIC_REG, PROBE_TIMEOUT) {
            Ok(CHIP_MAGIC) => return Ok(true),
            Ok(_) | Err(StubFailure::Silent | StubFailure::Refused { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(false)
}

/// Tries to move the link from its current rate to `rate`.
pub(crate) fn try_rate(client: &mut StubClient, rate: u32) -> Result<Attempt, StubFailure> {
    let old = client.baud();
    // Ask the port first: a rate it cannot set is refused before the stub moves.
    if client.set_port_baud(rate).is_err() {
        client
            .set_port_baud(old)
            .map_err(|e| StubFailure::Port(e.into()))?;
        return Ok(Attempt::Refused);
    }
    client
        .set_port_baud(old)
        .map_err(|e| StubFailure::Port(e.into()))?;
    client.change_baud(rate)?;
    std::thread::sleep(SETTLE);
    client
        .set_port_baud(rate)
        .map_err(|e| StubFailure::Port(e.into()))?;
    if answers(client)? {
        return Ok(Attempt::Switched);
    }
    // The link garbles at this rate. The stub may still understand us (trouble
    // is often one way only): ask it back to the old rate, blind.
    client.change_baud_blind(old, rate)?;
    std::thread::sleep(SETTLE);
    client
        .set_port_baud(old)
        .map_err(|e| StubFailure::Port(e.into()))?;
    if answers(client)? {
        Ok(Attempt::Recovered)
    } else {
        Ok(Attempt::Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders() {
        assert_eq!(
            ladder(921_600, LOADER_BAUD),
            vec![921_600, 460_800, 230_400]
        );
        assert_eq!(
            ladder(1_500_000, LOADER_BAUD),
            vec![1_500_000, 921_600, 460_800, 230_400]
        );
        assert_eq!(
            ladder(500_000, LOADER_BAUD),
            vec![500_000, 460_800, 230_400]
        );
        assert_eq!(ladder(115_200, LOADER_BAUD), Vec::<u32>::new());
        assert_eq!(ladder(57_600, LOADER_BAUD), vec![57_600]);
        assert_eq!(ladder(0, LOADER_BAUD), Vec::<u32>::new());
        assert_eq!(ladder(921_600, 230_400), vec![921_600, 460_800]);
    }
}
