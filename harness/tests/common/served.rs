//! A virtual board served on its own by the full build (`hil vboard --twin`),
//! reached over RFC 2217 as a remote board is; killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `hil vboard --twin` process and the URL it serves.
pub struct ServedBoard {
    child: Child,
    /// Its `rfc2217://` URL.
    pub url: String,
}

impl ServedBoard {
    /// Starts board `index` with its flash in `dir`, and any further arguments
    /// of `hil vboard` (`--pace hardware`, `--fault ...`).
    pub fn start(dir: &Path, index: u8, args: &[&str]) -> ServedBoard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
            .args(["vboard", "--twin", "--listen", "127.0.0.1:0", "--index"])
            .arg(index.to_string())
            .arg("--flash")
            .arg(dir.join(format!("board{index}.flash")))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        // Keep draining: a board whose stdout closes dies of the broken pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("rfc2217://"))
            .unwrap_or_else(|| panic!("no rfc2217:// URL in `{first}`"))
            .to_owned();
        ServedBoard { child, url }
    }
}

impl Drop for ServedBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
