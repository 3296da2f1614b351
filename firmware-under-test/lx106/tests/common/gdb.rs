//! QEMU's lx106 as an oracle: a `qemu-system-xtensa -M sim -cpu lx106` child stopped at
//! reset, driven through its gdbstub with the GDB remote serial protocol.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// GDB register numbers of QEMU's lx106 (the XTREG indices of
/// `target/xtensa/core-lx106/gdb-config.c.inc`).
pub mod regnum {
    pub const A0: u32 = 0;
    pub const PC: u32 = 16;
    pub const SAR: u32 = 17;
    pub const LITBASE: u32 = 18;
    pub const CONFIGID0: u32 = 19;
    pub const CONFIGID1: u32 = 20;
    pub const PS: u32 = 21;
    pub const IBREAKENABLE: u32 = 23;
    pub const DDR: u32 = 24;
    pub const IBREAKA0: u32 = 25;
    pub const DBREAKA0: u32 = 26;
    pub const DBREAKC0: u32 = 27;
    pub const EPC1: u32 = 28;
    pub const EPC2: u32 = 29;
    pub const EPC3: u32 = 30;
    pub const DEPC: u32 = 31;
    pub const EPS2: u32 = 32;
    pub const EPS3: u32 = 33;
    pub const EXCSAVE1: u32 = 34;
    pub const EXCSAVE2: u32 = 35;
    pub const EXCSAVE3: u32 = 36;
    pub const INTERRUPT: u32 = 37;
    pub const INTENABLE: u32 = 40;
    pub const VECBASE: u32 = 41;
    pub const EXCCAUSE: u32 = 42;
    pub const DEBUGCAUSE: u32 = 43;
    pub const CCOUNT: u32 = 44;
    pub const PRID: u32 = 45;
    pub const ICOUNT: u32 = 46;
    pub const ICOUNTLEVEL: u32 = 47;
    pub const EXCVADDR: u32 = 48;
    pub const CCOMPARE0: u32 = 49;
}

/// A running QEMU, killed when dropped.
pub struct Qemu {
    child: Child,
    stream: BufReader<TcpStream>,
    writer: TcpStream,
}

fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

impl Qemu {
    /// Starts QEMU stopped at reset with its gdbstub on a free loopback port, connects.
    pub fn start() -> Qemu {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free loopback port: {e}"));
        let child = Command::new("qemu-system-xtensa")
            .args([
                "-M",
                "sim",
                "-cpu",
                "lx106",
                "-nographic",
                "-S",
                "-no-reboot",
            ])
            .args(["-monitor", "none", "-serial", "null"])
            .arg("-gdb")
            .arg(format!("tcp:127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting qemu-system-xtensa: {e}"));
        let mut qemu_child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(e) => {
                    if Instant::now() > deadline {
                        if let Some(mut child) = qemu_child.take() {
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                        panic!("QEMU's gdbstub on port {port} did not answer: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let child = qemu_child.take().unwrap_or_else(|| unreachable!());
        stream.set_nodelay(true).unwrap_or_default();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap_or_default();
        let writer = stream
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning the gdb socket: {e}"));
        let mut qemu = Qemu {
            child,
            stream: BufReader::new(stream),
            writer,
        };
        // Single steps take pending interrupts and run timers, as free running does
        // (QEMU's default, SSTEP_NOIRQ | SSTEP_NOTIMER, would hide them).
        let reply = qemu.command("qqemu.sstep=0x1");
        assert_eq!(reply, "OK", "qqemu.sstep");
        qemu
    }

    fn read_byte(&mut self) -> u8 {
        let mut byte = [0u8];
        self.stream
            .read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("reading from QEMU's gdbstub: {e}"));
        byte[0]
    }

    fn send(&mut self, payload: &str) {
        let packet = format!("${payload}#{:02x}", checksum(payload.as_bytes()));
        loop {
            self.writer
                .write_all(packet.as_bytes())
                .unwrap_or_else(|e| panic!("writing to QEMU's gdbstub: {e}"));
            match self.read_byte() {
                b'+' => return,
                b'-' => continue,
                other => panic!("expected an ack from QEMU, got {:?}", other as char),
            }
        }
    }

    fn receive(&mut self) -> String {
        loop {
            // Skip to the start of a packet.
            while self.read_byte() != b'$' {}
            let mut data = Vec::new();
            loop {
                match self.read_byte() {
                    b'#' => break,
                    byte => data.push(byte),
                }
            }
            let hi = self.read_byte();
            let lo = self.read_byte();
            let sum = std::str::from_utf8(&[hi, lo])
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok());
            if sum == Some(checksum(&data)) {
                self.writer.write_all(b"+").unwrap_or_default();
                let text = String::from_utf8_lossy(&data).into_owned();
                // Console output ('O' packets) is not a reply.
                if text.starts_with('O') && text.len() > 1 && text != "OK" {
                    continue;
                }
                return text;
            }
            self.writer.write_all(b"-").unwrap_or_default();
        }
    }

    /// Sends a command and returns its reply.
    pub fn command(&mut self, payload: &str) -> String {
        self.send(payload);
        self.receive()
    }

    /// Reads all registers (QEMU 7.2 answers `p`/`P` only after an XML target
    /// description, which its xtensa stub lacks; `g`/`G` always work).
    pub fn regs(&mut self) -> Vec<u32> {
        let reply = self.command("g");
        let bytes = parse_hex(&reply).unwrap_or_else(|| panic!("g: unexpected reply {reply:?}"));
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Writes all registers.
    pub fn set_regs(&mut self, regs: &[u32]) {
        let hex: String = regs
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .map(|b| format!("{b:02x}"))
            .collect();
        let reply = self.command(&format!("G{hex}"));
        assert_eq!(reply, "OK", "G");
    }

    /// Reads register `n` (a GDB register number, see [`regnum`]).
    pub fn reg(&mut self, n: u32) -> u32 {
        self.regs()[n as usize]
    }

    /// Writes `data` to memory at `addr`.
    pub fn write_memory(&mut self, addr: u32, data: &[u8]) {
        for (i, chunk) in data.chunks(1024).enumerate() {
            let at = addr + (i * 1024) as u32;
            let hex: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let reply = self.command(&format!("M{at:x},{:x}:{hex}", chunk.len()));
            assert_eq!(reply, "OK", "writing {} bytes at {at:#x}", chunk.len());
        }
    }

    /// Reads `len` bytes of memory at `addr`.
    pub fn read_memory(&mut self, addr: u32, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let at = addr + out.len() as u32;
            let n = (len - out.len()).min(1024);
            let reply = self.command(&format!("m{at:x},{n:x}"));
            let bytes = parse_hex(&reply)
                .unwrap_or_else(|| panic!("m{at:x},{n:x}: unexpected reply {reply:?}"));
            assert!(!bytes.is_empty(), "m{at:x},{n:x}: empty reply");
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Executes one instruction (or takes one interrupt).
    pub fn step(&mut self) {
        let reply = self.command("vCont;s");
        assert!(
            reply.starts_with('S') || reply.starts_with('T'),
            "single step: unexpected reply {reply:?}"
        );
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.starts_with('E') && text.len() == 3 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_le32(text: &str) -> Option<u32> {
    let bytes = parse_hex(text)?;
    Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?))
}
