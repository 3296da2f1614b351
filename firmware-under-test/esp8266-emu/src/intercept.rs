//! The interception table: the one place where the machine replaces firmware code.
//!
//! The SDK's closed libraries run as compiled wherever they only compute. The radio
//! does not exist here: PHY calibration, the RF front end and the MAC (WDEV) are
//! undocumented hardware no public model implements. Where the firmware enters those
//! parts, the machine takes over at the function boundary, found by ELF symbol: the
//! function is not executed, it returns at once with the value given here. Each
//! entry says why. Nothing is intercepted by address alone; a symbol the ELF does not
//! have is reported as unresolved.

use std::collections::HashMap;

use crate::symbols::Symbols;

/// What the machine does instead of running an intercepted function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return at once with this value in a2.
    Return(u32),
    /// Return at once, a2 untouched (a `void` function).
    ReturnVoid,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Intercept {
    /// The function's ELF symbol.
    pub symbol: &'static str,
    /// What happens instead.
    pub action: Action,
    /// Why it is replaced.
    pub why: &'static str,
}

/// The table. Found by tracing the reference image from reset (see the crate docs).
pub const TABLE: &[Intercept] = &[];

/// The table resolved against an image's symbols.
#[derive(Debug, Clone, Default)]
pub struct Intercepts {
    by_addr: HashMap<u32, usize>,
    filter: Vec<u64>,
    /// Calls per table row.
    pub hits: Vec<u64>,
    /// Rows whose symbol the ELF lacks.
    pub unresolved: Vec<&'static str>,
}

impl Intercepts {
    /// Resolves [`TABLE`] against `symbols`.
    pub fn resolve(symbols: &Symbols) -> Intercepts {
        let mut me = Intercepts {
            by_addr: HashMap::new(),
            filter: vec![0; 1024],
            hits: vec![0; TABLE.len()],
            unresolved: Vec::new(),
        };
        for (i, row) in TABLE.iter().enumerate() {
            match symbols.addr_of(row.symbol) {
                Some(addr) => {
                    me.by_addr.insert(addr, i);
                    let bit = (addr >> 2) & 0xFFFF;
                    me.filter[(bit / 64) as usize] |= 1 << (bit % 64);
                }
                None => me.unresolved.push(row.symbol),
            }
        }
        me
    }

    /// The row intercepting `pc`, if any (a bit test first: this runs every step).
    #[inline]
    pub fn lookup(&mut self, pc: u32) -> Option<&'static Intercept> {
        let bit = (pc >> 2) & 0xFFFF;
        if self.filter[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
            return None;
        }
        let i = *self.by_addr.get(&pc)?;
        self.hits[i] += 1;
        Some(&TABLE[i])
    }
}
