//! The decoder against binutils: every instruction `xtensa-lx106-elf-objdump` finds in
//! the reference firmware's code sections decodes, with objdump's length, mnemonic and
//! operands.

mod common;

use std::process::Command;

use lx106::decode;

/// Turns objdump's operand text into the decoder's: no symbol names, no `0x`, and
/// `wsr.ps a2` as `wsr a2, ps`.
fn normalize_objdump(mnemonic: &str, operands: &str) -> String {
    let mut operands = operands.to_string();
    for open in ['<', '('] {
        if let Some(at) = operands.find(open) {
            operands.truncate(at);
        }
    }
    // objdump writes immediates of 256 and more in hex; the decoder in decimal.
    let operands = operands
        .trim()
        .split(", ")
        .map(
            |op| match op.strip_prefix("0x").or_else(|| op.strip_prefix("-0x")) {
                Some(hex) => {
                    // Negative immediates print as their 32-bit two's complement.
                    let value = u32::from_str_radix(hex, 16).unwrap_or_default() as i32 as i64;
                    if op.starts_with('-') {
                        (-value).to_string()
                    } else {
                        value.to_string()
                    }
                }
                None => op.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join(", ");
    match mnemonic.split_once('.') {
        Some((base @ ("rsr" | "wsr" | "xsr"), sr)) => format!("{base} {operands}, {sr}"),
        _ if operands.is_empty() => mnemonic.to_string(),
        _ => format!("{mnemonic} {operands}"),
    }
}

fn normalize_ours(text: &str) -> String {
    text.replace("0x", "")
}

#[test]
fn every_instruction_of_the_reference_firmware_decodes_as_objdump_says() {
    if !common::require_tools("reference_elf", &["xtensa-lx106-elf-objdump", "xz"]) {
        return;
    }
    let dir = common::scratch_dir("reference-elf");
    let elf = dir.join("reference.elf");
    let xz = common::workspace_root().join("fixtures/firmware/reference-nodemcuv2.elf.xz");
    let out = Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .unwrap_or_else(|e| panic!("xz -dc {}: {e}", xz.display()));
    assert!(out.status.success(), "xz -dc {} failed", xz.display());
    std::fs::write(&elf, &out.stdout).unwrap_or_else(|e| panic!("writing {}: {e}", elf.display()));

    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    for section in [".text", ".text1", ".irom0.text"] {
        let out = Command::new("xtensa-lx106-elf-objdump")
            .args(["-d", "-j", section])
            .arg(&elf)
            .output()
            .unwrap_or_else(|e| panic!("objdump: {e}"));
        assert!(out.status.success(), "objdump -d -j {section} failed");
        let listing = String::from_utf8_lossy(&out.stdout);
        for line in listing.lines() {
            // "40100007:\t13e720        \twsr.vecbase\ta2"
            let mut fields = line.split('\t');
            let (Some(addr), Some(hex), Some(mnemonic)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(addr) = addr.trim().strip_suffix(':') else {
                continue;
            };
            let (Ok(pc), Ok(word)) = (
                u32::from_str_radix(addr.trim(), 16),
                u32::from_str_radix(hex.trim(), 16),
            ) else {
                continue;
            };
            let mnemonic = mnemonic.trim();
            if mnemonic.starts_with('.') || (mnemonic == "excw" && word != 0x002080) {
                // Data objdump could not decode either: Debian's lx106 binutils prints
                // some undecodable words as `excw` (whose only encoding is 0x002080).
                continue;
            }
            if mnemonic == "rfdo" || mnemonic == "rfdd" {
                // OCD's return-from-debug: binutils knows them, QEMU's lx106 raises
                // IllegalInstruction (XTENSA_OP_ILL), and so does the decoder.
                assert!(decode(word).is_err(), "{pc:08x}: {mnemonic} decoded");
                continue;
            }
            let len = hex.trim().len() / 2;
            let operands = fields.next().unwrap_or("");
            let expected = normalize_objdump(mnemonic, operands);
            checked += 1;
            match decode(word) {
                Ok(insn) if insn.len as usize == len => {
                    let ours = normalize_ours(&insn.at(pc).to_string());
                    if ours != expected {
                        mismatches.push(format!(
                            "{pc:08x} {word:06x}: objdump `{expected}`, ours `{ours}`"
                        ));
                    }
                }
                Ok(insn) => mismatches.push(format!(
                    "{pc:08x} {word:06x}: objdump {len} bytes `{expected}`, ours {} bytes `{insn}`",
                    insn.len
                )),
                Err(e) => mismatches.push(format!(
                    "{pc:08x} {word:06x}: objdump `{expected}`, ours {e}"
                )),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{checked} instructions compared with objdump");
    assert!(checked > 100_000, "only {checked} instructions found");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} instructions differ from objdump, e.g.:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
