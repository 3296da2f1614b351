//! The image's symbol table, read from its ELF: names for addresses (the log of
//! unmodelled registers says which function touched them) and addresses for names
//! (the interception table is keyed by symbol).

use std::collections::HashMap;

use object::{Object, ObjectSymbol, SymbolKind};
use thiserror::Error;

/// Why an ELF could not be read.
#[derive(Debug, Error)]
pub enum SymbolError {
    /// The bytes are not an ELF the `object` crate can parse.
    #[error("not a readable ELF: {0}")]
    Parse(#[from] object::Error),
}

/// One symbol: where it starts, how long it is (0 when the ELF does not say), its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Start address.
    pub addr: u32,
    /// Size in bytes (0 if unknown).
    pub size: u32,
    /// The (mangled) name.
    pub name: String,
}

/// Symbols sorted by address, and an index by name.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    by_addr: Vec<Symbol>,
    by_name: HashMap<String, u32>,
}

impl Symbols {
    /// No symbols: every address is anonymous.
    pub fn empty() -> Symbols {
        Symbols::default()
    }

    /// The function and object symbols of an ELF (section and file symbols left out).
    pub fn from_elf(bytes: &[u8]) -> Result<Symbols, SymbolError> {
        let file = object::File::parse(bytes)?;
        let mut list = Vec::new();
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() || matches!(sym.kind(), SymbolKind::Section | SymbolKind::File) {
                continue;
            }
            list.push(Symbol {
                addr: sym.address() as u32,
                size: sym.size() as u32,
                name: name.to_string(),
            });
        }
        Ok(Symbols::from_list(list))
    }

    /// Symbols from a list (tests, or a table built by hand).
    pub fn from_list(mut list: Vec<Symbol>) -> Symbols {
        list.sort_by(|a, b| a.addr.cmp(&b.addr).then(b.size.cmp(&a.size)));
        let mut by_name = HashMap::new();
        for sym in &list {
            by_name.entry(sym.name.clone()).or_insert(sym.addr);
        }
        Symbols {
            by_addr: list,
            by_name,
        }
    }

    /// The address of a symbol by name.
    pub fn addr_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// The symbol at or below `addr` whose size covers it (or, when sizes are
    /// unknown, the nearest one below within 64 KiB), with the offset into it.
    pub fn lookup(&self, addr: u32) -> Option<(&Symbol, u32)> {
        let idx = self.by_addr.partition_point(|s| s.addr <= addr);
        // Walk back over symbols at lower addresses: the first one that covers `addr`.
        let mut fallback = None;
        for sym in self.by_addr[..idx].iter().rev().take(64) {
            let off = addr - sym.addr;
            if sym.size != 0 && off < sym.size {
                return Some((sym, off));
            }
            if fallback.is_none() && off < 0x1_0000 && sym.size == 0 {
                fallback = Some((sym, off));
            }
        }
        fallback
    }

    /// `name+0xoff` for an address, or the bare address when nothing covers it.
    pub fn describe(&self, addr: u32) -> String {
        if addr >> 16 == 0x4000 {
            // The ROM: the linker script's names (the ELF has only the ones it links).
            return match crate::rom::names::rom_name(addr) {
                Some(name) => format!("ROM {name}"),
                None => format!("ROM {addr:#010x}"),
            };
        }
        match self.lookup(addr) {
            Some((sym, 0)) => sym.name.clone(),
            Some((sym, off)) => format!("{}+{off:#x}", sym.name),
            None => format!("{addr:#010x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_the_covering_symbol() {
        let syms = Symbols::from_list(vec![
            Symbol {
                addr: 0x100,
                size: 0x10,
                name: "small".into(),
            },
            Symbol {
                addr: 0x80,
                size: 0x100,
                name: "big".into(),
            },
            Symbol {
                addr: 0x300,
                size: 0,
                name: "nosize".into(),
            },
        ]);
        assert_eq!(syms.describe(0x104), "small+0x4");
        assert_eq!(syms.describe(0x150), "big+0xd0");
        assert_eq!(syms.describe(0x310), "nosize+0x10");
        assert_eq!(syms.describe(0x10), "0x00000010");
        assert_eq!(syms.addr_of("big"), Some(0x80));
    }
}
