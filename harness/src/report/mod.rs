//! Reports written from a run's results: JUnit XML, cucumber JSON, the HTML
//! timeline, and the kill matrix of the main job. Every writer reads the same
//! [`ScenarioResult`](crate::runner::ScenarioResult)s, so a failure reads the same
//! everywhere; every writer produces a valid document whatever bytes the device
//! or the broker sent (control characters, `]]>`, invalid UTF-8 already made
//! lossy), and every known secret is redacted.
//!
//! ```
//! use hil::report::xml_text;
//!
//! assert_eq!(xml_text("a\u{0}b ]]> <c>"), "a\\x00b ]]&gt; &lt;c&gt;");
//! ```

mod cucumber_json;
mod html;
mod junit;
mod matrix;

use std::path::{Path, PathBuf};

pub use cucumber_json::cucumber_json;
pub use html::{html, write_html};
pub use junit::junit_xml;
pub use matrix::{KillMatrix, MatrixChange};

use crate::artifact::{write_atomically, Secrets};
use crate::runner::RunReport;

/// Text safe inside an XML 1.0 element or attribute: markup escaped, and the
/// characters XML 1.0 forbids (most control characters, U+FFFE, U+FFFF) written
/// as `\xNN` so they stay visible.
pub fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Where a run's reports went.
#[derive(Debug, Clone)]
pub struct Written {
    /// `junit.xml` in the run directory.
    pub junit: PathBuf,
    /// `cucumber.json` in the run directory.
    pub json: PathBuf,
    /// `report/index.html` in the run directory.
    pub html: PathBuf,
}

/// Writes JUnit XML, cucumber JSON and the HTML report of `report` into its run
/// directory, each file whole or not at all.
pub fn write_all(report: &RunReport, title: &str, secrets: &Secrets) -> std::io::Result<Written> {
    let dir = &report.run_dir;
    std::fs::create_dir_all(dir)?;
    let written = Written {
        junit: dir.join("junit.xml"),
        json: dir.join("cucumber.json"),
        html: dir.join("report").join("index.html"),
    };
    write_atomically(&written.junit, junit_xml(report, secrets).as_bytes())?;
    write_atomically(&written.json, cucumber_json(report, secrets).as_bytes())?;
    let runs = [(report.firmware.clone(), report)];
    write_html(&dir.join("report"), title, &runs, secrets)?;
    Ok(written)
}

/// Copies a written report to where the user asked for it, atomically.
pub fn copy_to(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    write_atomically(to, &std::fs::read(from)?)
}

#[cfg(test)]
pub(crate) mod hostile {
    //! Strings a device or a broker may send, for the writers' tests.

    /// Every one must come out of every writer as a valid document.
    pub(crate) const CORPUS: &[&str] = &[
        "\u{0}\u{2}\u{c} ets Jan  8 2013,rst cause:2, boot mode:(3,6)",
        "]]></system-out><testcase name=\"fake\"/><system-out><![CDATA[",
        "</script><script>alert(1)</script>",
        "\" onmouseover=\"x",
        "{\"json\": \"\\u0000\"}\n\t\r",
        "\u{fffe}\u{ffff}\u{fffd}",
        "-->",
        "&amp; &lt; &#0;",
        "\u{1b}[31mred\u{1b}[0m",
    ];
}
