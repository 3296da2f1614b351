//! Runs one `hil::fuzz` target under AFL++ (persistent mode). The target is named
//! by `HIL_FUZZ_TARGET`; `ci/fuzz` sets it.

fn main() {
    let name = std::env::var("HIL_FUZZ_TARGET").unwrap_or_default();
    let Some(target) = hil::fuzz::target(&name) else {
        let names: Vec<&str> = hil::fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "HIL_FUZZ_TARGET={name:?} names no target (targets: {})",
            names.join(", ")
        );
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        (target.run)(data);
    });
}
