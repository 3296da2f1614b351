//! Local serial ports: by path, or by the USB adapter's serial number or bus
//! location, which survive re-enumeration when the device name does not.

use std::time::Duration;

use serialport::{FlowControl, SerialPortType};

use super::{PortSpec, SerialError};

type UsbMatcher<'a> = Box<dyn Fn(&serialport::UsbPortInfo) -> bool + 'a>;

/// The device path of the USB serial port matching `spec` (a serial number or a
/// location such as `1-1.2`), looked up now.
pub fn find_usb_port(spec: &PortSpec) -> Result<String, SerialError> {
    let (what, matches): (String, UsbMatcher) = match spec {
        PortSpec::UsbSerial(serial) => (
            format!("serial number {serial}"),
            Box::new(move |info| info.serial_number.as_deref() == Some(serial.as_str())),
        ),
        PortSpec::UsbLocation(location) => (
            format!("location {location}"),
            Box::new(move |info| {
                info.location
                    .as_ref()
                    .is_some_and(|l| l.to_string() == *location)
            }),
        ),
        PortSpec::Path(path) => return Ok(path.display().to_string()),
        PortSpec::Rfc2217(addr) => {
            return Err(SerialError::BadSpec {
                spec: format!("rfc2217://{addr}"),
            })
        }
    };
    let ports =
        serialport::available_ports().map_err(|_| SerialError::NotFound { what: what.clone() })?;
    ports
        .into_iter()
        .find(|port| match &port.port_type {
            SerialPortType::UsbPort(info) => matches(info),
            _ => false,
        })
        .map(|port| port.port_name)
        .ok_or(SerialError::NotFound { what })
}

/// Opens a local port (path or USB lookup) at `baud`, 8N1, no flow control.
pub fn open_local(
    spec: &PortSpec,
    baud: u32,
) -> Result<Box<dyn serialport::SerialPort>, SerialError> {
    let path = find_usb_port(spec)?;
    serialport::new(&path, baud)
        .flow_control(FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open()
        .map_err(|source| SerialError::Open { path, source })
}
