//! Builds the C shim over BearSSL and links the system's static libbearssl, so the
//! twin runs the same X.509 and TLS engine code as the ESP8266 core.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=csrc/twin_tls.c");
    println!("cargo:rerun-if-changed=csrc/twin_tls.h");
    println!("cargo:rerun-if-env-changed=BEARSSL_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=BEARSSL_LIB_DIR");

    let include = std::env::var_os("BEARSSL_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    if !include.join("bearssl.h").is_file() {
        fail(&format!(
            "bearssl.h not found in {} (set BEARSSL_INCLUDE_DIR, or run ci/setup to install libbearssl-dev)",
            include.display()
        ));
    }
    let lib_dir = std::env::var_os("BEARSSL_LIB_DIR")
        .map(PathBuf::from)
        .or_else(find_static_lib)
        .unwrap_or_else(|| {
            fail("libbearssl.a not found (set BEARSSL_LIB_DIR, or run ci/setup to install libbearssl-dev)")
        });

    cc::Build::new()
        .file("csrc/twin_tls.c")
        .include(&include)
        .warnings(true)
        .compile("twin_tls");
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=static=bearssl");
}

fn find_static_lib() -> Option<PathBuf> {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let multiarch = format!("/usr/lib/{arch}-{os}-{env}");
    [
        multiarch.as_str(),
        "/usr/lib",
        "/usr/local/lib",
        "/usr/lib64",
    ]
    .iter()
    .map(Path::new)
    .find(|dir| dir.join("libbearssl.a").is_file())
    .map(Path::to_path_buf)
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
