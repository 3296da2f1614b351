//! A serial port wrapper that counts the bytes crossing it (for figures: bytes on
//! the wire per flash run).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};

/// Bytes sent to and received from the board.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireCount {
    /// Harness to board.
    pub sent: u64,
    /// Board to harness.
    pub received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

/// Reads the counters of a [`CountingPort`].
#[derive(Debug, Clone)]
pub(crate) struct Counter(Arc<Counters>);

impl Counter {
    pub(crate) fn get(&self) -> WireCount {
        WireCount {
            sent: self.0.sent.load(Ordering::Relaxed),
            received: self.0.received.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct CountingPort {
    inner: Box<dyn SerialPort>,
    counters: Arc<Counters>,
}

impl CountingPort {
    pub(crate) fn wrap(inner: Box<dyn SerialPort>) -> (CountingPort, Counter) {
        let counters = Arc::new(Counters::default());
        (
            CountingPort {
                inner,
                counters: counters.clone(),
            },
            Counter(counters),
        )
    }
}

impl Read for CountingPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters
            .received
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for CountingPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl SerialPort for CountingPort {
    fn name(&self) -> Option<String> {
        self.inner.name()
    }
    fn baud_rate(&self) -> serialport::Result<u32> {
        self.inner.baud_rate()
    }
    fn data_bits(&self) -> serialport::Result<DataBits> {
        self.inner.data_bits()
    }
    fn flow_control(&self) -> serialport::Result<FlowControl> {
        self.inner.flow_control()
    }
    fn parity(&self) -> serialport::Result<Parity> {
        self.inner.parity()
    }
    fn stop_bits(&self) -> serialport::Result<StopBits> {
        self.inner.stop_bits()
    }
    fn timeout(&self) -> Duration {
        self.inner.timeout()
    }
    fn set_baud_rate(&mut self, baud_rate: u32) -> serialport::Result<()> {
        self.inner.set_baud_rate(baud_rate)
    }
    fn set_data_bits(&mut self, data_bits: DataBits) -> serialport::Result<()> {
        self.inner.set_data_bits(data_bits)
    }
    fn set_flow_control(&mut self, flow_control: FlowControl) -> serialport::Result<()> {
        self.inner.set_flow_control(flow_control)
    }
    fn set_parity(&mut self, parity: Parity) -> serialport::Result<()> {
        self.inner.set_parity(parity)
    }
    fn set_stop_bits(&mut self, stop_bits: StopBits) -> serialport::Result<()> {
        self.inner.set_stop_bits(stop_bits)
    }
    fn set_timeout(&mut self, timeout: Duration) -> serialport::Result<()> {
        self.inner.set_timeout(timeout)
    }
    fn write_request_to_send(&mut self, level: bool) -> serialport::Result<()> {
        self.inner.write_request_to_send(level)
    }
    fn write_data_terminal_ready(&mut self, level: bool) -> serialport::Result<()> {
        self.inner.write_data_terminal_ready(level)
    }
    fn read_clear_to_send(&mut self) -> serialport::Result<bool> {
        self.inner.read_clear_to_send()
    }
    fn read_data_set_ready(&mut self) -> serialport::Result<bool> {
        self.inner.read_data_set_ready()
    }
    fn read_ring_indicator(&mut self) -> serialport::Result<bool> {
        self.inner.read_ring_indicator()
    }
    fn read_carrier_detect(&mut self) -> serialport::Result<bool> {
        self.inner.read_carrier_detect()
    }
    fn bytes_to_read(&self) -> serialport::Result<u32> {
        self.inner.bytes_to_read()
    }
    fn bytes_to_write(&self) -> serialport::Result<u32> {
        self.inner.bytes_to_write()
    }
    fn clear(&self, buffer_to_clear: ClearBuffer) -> serialport::Result<()> {
        self.inner.clear(buffer_to_clear)
    }
    fn try_clone(&self) -> serialport::Result<Box<dyn SerialPort>> {
        Ok(Box::new(CountingPort {
            inner: self.inner.try_clone()?,
            counters: self.counters.clone(),
        }))
    }
    fn set_break(&self) -> serialport::Result<()> {
        self.inner.set_break()
    }
    fn clear_break(&self) -> serialport::Result<()> {
        self.inner.clear_break()
    }
}
