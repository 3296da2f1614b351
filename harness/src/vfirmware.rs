//! Virtual firmware: genuine ESP8266 v1 images whose data segment carries the
//! twin's descriptor, and the runner that boots them on the virtual board.
//!
//! The board checks such an image exactly as the ROM would (segments, checksum);
//! it never executes Xtensa code. When the image carries a descriptor, the
//! firmware twin runs with those knobs; any other valid image runs nothing, as a
//! real chip would look to us if we could not see inside it.
//!
//! ```
//! use hil::vfirmware;
//! use hil_twin::descriptor::Variant;
//!
//! let image = vfirmware::build(&Variant::NoNtp.descriptor());
//! let bytes = image.to_bytes();
//! let (parsed, descriptor) = vfirmware::inspect(&bytes)?;
//! assert!(parsed.checksum_ok());
//! assert_eq!(descriptor.variant, "no-ntp");
//! # Ok::<(), hil::vfirmware::VfirmwareError>(())
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use hil_twin::descriptor::{Descriptor, DescriptorError};
use hil_twin::{AccessPoint, BoardEnv, Exit};
use tokio::sync::mpsc;

use crate::image::{ImageError, ImageV1, Segment};
use crate::vboard::{BoxFuture, FirmwareBoot, FirmwareRunner, ResetCause};

/// Where the ROM would load the (placeholder) code segment: IRAM.
const IRAM: u32 = 0x4010_0000;
/// Where the descriptor segment loads: DRAM.
const DRAM: u32 = 0x3FFE_8000;
/// The entry point written in the header.
const ENTRY: u32 = IRAM + 4;
/// The Arduino core's UART rate once `Serial.begin(115200)` ran.
const APP_BAUD: u32 = 115_200;

/// What a virtual firmware image can be wrong about.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum VfirmwareError {
    /// Not a valid v1 image.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    /// A valid image without a usable descriptor (its words in the message, once).
    #[error("{0}")]
    #[diagnostic(
        code(hil::vfirmware::descriptor),
        help("build virtual firmware with `hil vfirmware build --variant <name>`")
    )]
    Descriptor(DescriptorError),
}

impl From<DescriptorError> for VfirmwareError {
    fn from(e: DescriptorError) -> Self {
        VfirmwareError::Descriptor(e)
    }
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    // The ROM copies segments in 32-bit words.
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
    bytes
}

/// Builds the image for `descriptor`.
pub fn build(descriptor: &Descriptor) -> ImageV1 {
    let code =
        padded(b"hil virtual firmware: no Xtensa code inside; the board runs its twin\0".to_vec());
    let data = padded(descriptor.encode());
    ImageV1::new(
        ENTRY,
        vec![Segment::new(IRAM, code), Segment::new(DRAM, data)],
    )
}

/// The descriptor an image carries.
pub fn descriptor_of(image: &ImageV1) -> Result<Descriptor, DescriptorError> {
    let data: Vec<u8> = image
        .segments()
        .iter()
        .flat_map(|s| s.data().iter().copied())
        .collect();
    Descriptor::decode(&data)
}

/// Parses an image file's bytes and reads its descriptor.
pub fn inspect(bytes: &[u8]) -> Result<(ImageV1, Descriptor), VfirmwareError> {
    let image = ImageV1::parse(bytes)?;
    let descriptor = descriptor_of(&image)?;
    Ok((image, descriptor))
}

/// What the board's surroundings offer the twin: what DHCP would hand out and the
/// Wi-Fi in range. The runner reads it at every boot, so a scenario can change it
/// between boots.
#[derive(Debug, Clone, Default)]
pub struct TwinNetwork {
    /// DNS server handed out by "DHCP" (the lab's).
    pub dns: Option<SocketAddr>,
    /// NTP server handed out by "DHCP" (the lab's).
    pub ntp: Option<SocketAddr>,
    /// The access point in range; `None` accepts any credentials.
    pub access_point: Option<AccessPoint>,
    /// A host interface the board joins for real: at every boot it asks for a
    /// DHCP lease there as its efuse MAC, takes the address and the route, and
    /// the lease's DNS and NTP replace `dns` and `ntp` (Linux, CAP_NET_ADMIN).
    pub wifi: Option<String>,
}

/// How long a board joining a real network waits for a DHCP answer at boot.
const DHCP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the twin for images that carry a descriptor.
#[derive(Debug, Clone, Default)]
pub struct TwinRunner {
    network: Arc<RwLock<TwinNetwork>>,
}

impl TwinRunner {
    /// A runner offering `network` to every boot.
    pub fn new(network: TwinNetwork) -> TwinRunner {
        TwinRunner {
            network: Arc::new(RwLock::new(network)),
        }
    }

    /// Changes what the next boot gets.
    pub fn set_network(&self, network: TwinNetwork) {
        if let Ok(mut slot) = self.network.write() {
            *slot = network;
        }
    }

    fn network(&self) -> TwinNetwork {
        self.network.read().map(|n| n.clone()).unwrap_or_default()
    }
}

/// The board takes its address on a real interface by DHCP as it starts (a real
/// board asks a moment later, after its boot lines). Without a lease the
/// firmware finds no network it can join and says so, again and again.
async fn join_network(env: &mut BoardEnv, interface: &str) {
    let hostname = format!("ESP-{:02X}{:02X}{:02X}", env.mac[3], env.mac[4], env.mac[5]);
    let joined = match crate::vboard::wifi::lease(interface, env.mac, &hostname, DHCP_TIMEOUT).await
    {
        Ok(Some(lease)) => crate::vboard::wifi::configure(interface, &lease)
            .await
            .ok()
            .map(|()| lease),
        _ => None,
    };
    match joined {
        Some(lease) => {
            env.ip = lease.ip;
            env.dns = lease.dns.map(|ip| SocketAddr::from((ip, 53)));
            env.ntp = lease.ntp.map(|ip| SocketAddr::from((ip, 123)));
        }
        None => {
            env.access_point = Some(AccessPoint {
                ssid: format!("(no DHCP answer on {interface})"),
                password: String::new(),
            });
        }
    }
}

fn reset_reason(cause: ResetCause) -> &'static str {
    match cause {
        // The core's ESP.getResetReason() with spaces as dashes, as the sketch
        // prints it.
        ResetCause::PowerOn => "Power-On",
        ResetCause::External => "External-System",
        ResetCause::Exception => "Exception",
    }
}

impl FirmwareRunner for TwinRunner {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        let Ok(descriptor) = descriptor_of(&boot.image) else {
            // Not a twin image: nothing we can run.
            return Box::pin(async {});
        };
        let network = self.network();
        Box::pin(async move {
            let FirmwareBoot {
                mut console,
                index,
                cause,
                ..
            } = boot;
            console.set_baud(APP_BAUD);
            let mut env = BoardEnv {
                ip: index.device_ip(),
                mac: index.mac(),
                access_point: network.access_point,
                dns: network.dns,
                ntp: network.ntp,
                reset_reason: reset_reason(cause).into(),
            };
            if let Some(interface) = &network.wifi {
                join_network(&mut env, interface).await;
            }
            let (output, mut printed) = mpsc::unbounded_channel();
            let (typed, input) = mpsc::unbounded_channel();
            let mut twin_console = hil_twin::Console { output, input };
            let firmware = hil_twin::run(&descriptor, &env, &mut twin_console);
            tokio::pin!(firmware);
            loop {
                tokio::select! {
                    exit = &mut firmware => {
                        while let Ok(bytes) = printed.try_recv() {
                            console.write(&bytes);
                        }
                        if let Exit::Reboot { .. } = exit {
                            // The chip restarts: the board's next boot is the
                            // restart (see the board's reset handling).
                            console.request_restart();
                        }
                        return;
                    }
                    Some(bytes) = printed.recv() => console.write(&bytes),
                    received = console.read() => match received {
                        Some(bytes) => { let _ = typed.send(bytes); }
                        None => return,
                    },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hil_twin::descriptor::Variant;

    #[test]
    fn every_variant_builds_a_valid_image_that_carries_it() {
        for variant in Variant::ALL {
            let descriptor = variant.descriptor();
            let bytes = build(&descriptor).to_bytes();
            let (image, back) = inspect(&bytes).unwrap();
            assert!(image.checksum_ok(), "{variant}");
            assert_eq!(back, descriptor);
        }
    }

    #[test]
    fn an_image_without_a_descriptor_is_named_as_such() {
        let image = ImageV1::new(ENTRY, vec![Segment::new(IRAM, vec![0; 16])]);
        let err = inspect(&image.to_bytes()).unwrap_err();
        assert!(matches!(
            err,
            VfirmwareError::Descriptor(DescriptorError::Missing)
        ));
    }
}

/// The twin running without a board (tests, benchmarks): its serial output as
/// lines with their time since boot, provisioned as soon as it asks.
#[derive(Debug)]
pub struct DetachedTwin {
    lines: mpsc::UnboundedReceiver<(std::time::Duration, String)>,
    task: tokio::task::JoinHandle<Exit>,
}

impl DetachedTwin {
    /// Boots `descriptor` with `env`; `provisioning` is the `PROV` line to answer
    /// `[prov] ready` with (`None`: run unprovisioned).
    pub fn start(
        descriptor: Descriptor,
        env: BoardEnv,
        provisioning: Option<String>,
    ) -> DetachedTwin {
        let (output, mut printed) = mpsc::unbounded_channel::<Vec<u8>>();
        let (typed, input) = mpsc::unbounded_channel();
        let (lines_tx, lines) = mpsc::unbounded_channel();
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut partial = Vec::new();
            while let Some(bytes) = printed.recv().await {
                partial.extend_from_slice(&bytes);
                while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = partial.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                    if line.starts_with("[prov] ready")
                        || line.starts_with("Waiting for provisioning")
                    {
                        if let Some(prov) = &provisioning {
                            let _ = typed.send(prov.clone().into_bytes());
                        }
                    }
                    if lines_tx.send((started.elapsed(), line)).is_err() {
                        return;
                    }
                }
            }
        });
        let task = tokio::spawn(async move {
            let mut console = hil_twin::Console { output, input };
            hil_twin::run(&descriptor, &env, &mut console).await
        });
        DetachedTwin { lines, task }
    }

    /// The next line, waiting at most `within`.
    pub async fn next_line(
        &mut self,
        within: std::time::Duration,
    ) -> Option<(std::time::Duration, String)> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for DetachedTwin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
