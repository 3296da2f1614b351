//! Libraries and programs the harness and its tests rely on.

use std::path::{Path, PathBuf};

use super::Check;

/// Where distributions put libraries.
fn lib_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/lib"), PathBuf::from("/usr/local/lib")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("-linux-gnu") && p.is_dir()),
        );
    }
    dirs.push(PathBuf::from("/usr/lib64"));
    dirs
}

/// The first libbearssl.a or libbearssl.so* in the usual directories.
fn find_bearssl() -> Option<PathBuf> {
    lib_dirs().into_iter().find_map(|dir| {
        std::fs::read_dir(&dir).ok()?.flatten().find_map(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            (name == "libbearssl.a" || name.starts_with("libbearssl.so")).then(|| entry.path())
        })
    })
}

/// The program `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// libbearssl, mosquitto and its clients, openssl, esptool, PlatformIO.
/// `venv` is the project's Python venv, when known.
pub fn check_tools(venv: Option<&Path>) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match find_bearssl() {
        Some(lib) => Check::ok("tool: libbearssl", lib.display().to_string()),
        None => Check::fail(
            "tool: libbearssl",
            "libbearssl (.a or .so) not found in /usr/lib, /usr/lib/*-linux-gnu, /usr/local/lib",
            "`sudo apt-get install libbearssl-dev`, or run ci/setup",
        ),
    });
    checks.push(match on_path("openssl") {
        Some(p) => Check::ok("tool: openssl", p.display().to_string()),
        None => Check::fail(
            "tool: openssl",
            "openssl not on PATH",
            "`sudo apt-get install openssl`, or run ci/setup",
        ),
    });
    for (program, why) in [
        ("mosquitto", "the second broker backend"),
        ("mosquitto_sub", "interop tests"),
        ("mosquitto_pub", "interop tests"),
    ] {
        checks.push(match on_path(program) {
            Some(p) => Check::ok(format!("tool: {program}"), p.display().to_string()),
            None => Check::warn(
                format!("tool: {program}"),
                format!("{program} not on PATH ({why})"),
                "`sudo apt-get install mosquitto mosquitto-clients`, or run ci/setup",
            ),
        });
    }
    let in_venv = |names: &[&str]| {
        venv.and_then(|v| {
            names
                .iter()
                .map(|n| v.join("bin").join(n))
                .find(|p| is_executable(p))
        })
    };
    checks.push(
        match in_venv(&["esptool.py", "esptool"]).or_else(|| on_path("esptool.py")) {
            Some(p) => Check::ok("tool: esptool", p.display().to_string()),
            None => Check::warn(
                "tool: esptool",
                match venv {
                    Some(v) => format!("no esptool in {}/bin nor on PATH", v.display()),
                    None => {
                        "no project venv found (run from the repository) and no esptool.py on PATH"
                            .into()
                    }
                },
                "run ci/setup (installs esptool 4.8.1 into .venv)",
            ),
        },
    );
    checks.push(match in_venv(&["pio"]).or_else(|| on_path("pio")) {
        Some(p) => Check::ok("tool: platformio", p.display().to_string()),
        None => Check::warn(
            "tool: platformio",
            "pio not found (needed to build the real-board firmware)",
            "run `ci/setup --hardware`",
        ),
    });
    checks
}
