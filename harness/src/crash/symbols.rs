//! Code addresses to function and file:line, through the firmware's ELF (DWARF
//! read by the `addr2line` crate), the way an exception decoder does it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Crash;

/// An ELF that cannot be used for decoding.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read symbols from {}: {reason}", path.display())]
#[diagnostic(
    code(hil::crash::elf),
    help("give the ELF the image was built from (PlatformIO: .pio/build/<env>/firmware.elf), built with -g")
)]
pub struct SymbolsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Where one code address is in the source: the innermost function first, then
/// the functions it was inlined into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFrame {
    /// The address decoded.
    pub address: u32,
    /// The function, demangled.
    pub function: Option<String>,
    /// The source file.
    pub file: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// Whether this frame was inlined into the next one.
    pub inlined: bool,
}

impl fmt::Display for SourceFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "0x{:08x}: {}",
            self.address,
            self.function.as_deref().unwrap_or("??")
        )?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " at {file}:{line}")?,
            (Some(file), None) => write!(f, " at {file}")?,
            _ => {}
        }
        if self.inlined {
            f.write_str(" (inlined)")?;
        }
        Ok(())
    }
}

/// The debug information of one firmware ELF.
pub struct Symbols {
    loader: addr2line::Loader,
    path: PathBuf,
}

impl fmt::Debug for Symbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Symbols").field("path", &self.path).finish()
    }
}

impl Symbols {
    /// Opens an ELF with DWARF.
    pub fn open(path: &Path) -> Result<Symbols, SymbolsError> {
        let fail = |reason: String| SymbolsError {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        let loader = addr2line::Loader::new(path).map_err(|e| fail(e.to_string()))?;
        Ok(Symbols {
            loader,
            path: path.to_path_buf(),
        })
    }

    /// The ELF's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `address` is: its inlining chain, innermost first; empty when the
    /// ELF knows nothing of it (ROM code, another build).
    pub fn frames(&self, address: u32) -> Vec<SourceFrame> {
        let mut out = Vec::new();
        if let Ok(mut frames) = self.loader.find_frames(u64::from(address)) {
            while let Ok(Some(frame)) = frames.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok().map(|n| n.into_owned()));
                let (file, line) = frame
                    .location
                    .as_ref()
                    .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
                out.push(SourceFrame {
                    address,
                    function,
                    file,
                    line,
                    inlined: true,
                });
            }
        }
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        if out.is_empty() {
            if let Some(name) = self.loader.find_symbol(u64::from(address)) {
                out.push(SourceFrame {
                    address,
                    function: Some(demangle(name)),
                    file: None,
                    line: None,
                    inlined: false,
                });
            }
        }
        out
    }

    /// The crash's addresses decoded, the faulting instruction first; addresses
    /// the ELF does not know are left out.
    pub fn backtrace(&self, crash: &Crash) -> Vec<SourceFrame> {
        crash
            .code_addresses()
            .into_iter()
            .flat_map(|a| self.frames(a))
            .collect()
    }
}

fn demangle(name: &str) -> String {
    addr2line::demangle_auto(name.into(), None).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_elf_is_an_error_naming_it() {
        let err = Symbols::open(Path::new("/nonexistent/firmware.elf")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/firmware.elf"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_an_elf_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firmware.elf");
        std::fs::write(&path, b"not an ELF at all").unwrap();
        assert!(Symbols::open(&path).is_err());
    }
}
