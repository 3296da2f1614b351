//! `hil vfirmware`: virtual firmware images for the virtual board.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hil::vfirmware;
use hil_contract::descriptor::{CompiledRoot, Variant, KNOB_NAMES};
use miette::{Context, IntoDiagnostic, Result};

/// Virtual firmware: genuine ESP8266 images whose descriptor selects the twin's behaviour.
#[derive(Debug, Subcommand)]
pub enum VfirmwareCommand {
    /// Write an image for a variant, with any knobs changed.
    Build(BuildArgs),
    /// Print an image's header, segments and descriptor.
    Inspect(InspectArgs),
    /// List the variants and the knobs each sets.
    List,
    /// Time the reference twin on `valid`: boot to first publish, and the TLS handshake.
    #[cfg(feature = "virtual")]
    Bench(super::vfirmware_bench::BenchArgs),
}

impl VfirmwareCommand {
    /// Runs the subcommand.
    pub fn run(self) -> Result<ExitCode> {
        match self {
            VfirmwareCommand::Build(args) => args.run(),
            VfirmwareCommand::Inspect(args) => args.run(),
            VfirmwareCommand::List => list(),
            #[cfg(feature = "virtual")]
            VfirmwareCommand::Bench(args) => args.run(),
        }
    }
}

/// Arguments of `hil vfirmware build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The variant to start from (see `hil vfirmware list`).
    #[arg(long, default_value = "reference", value_parser = parse_variant)]
    variant: Variant,
    /// Change one knob: `--set trust=insecure --set rx_buffer=512` (any combination).
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    settings: Vec<String>,
    /// A test build: the compiled-in settings trust this root (one PEM
    /// certificate, e.g. the lab-root.pem `hil pki export` writes) instead of the
    /// production root. Sets the `root_der` knob.
    #[arg(long, value_name = "PEM")]
    root_pem: Option<PathBuf>,
    /// Where to write the image.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

fn parse_variant(name: &str) -> Result<Variant, String> {
    Variant::parse(name).map_err(|e| e.to_string())
}

impl BuildArgs {
    fn run(self) -> Result<ExitCode> {
        let mut descriptor = self.variant.descriptor();
        for setting in &self.settings {
            descriptor
                .apply(setting)
                .into_diagnostic()
                .wrap_err_with(|| format!("--set {setting}"))?;
        }
        if let Some(path) = &self.root_pem {
            let root = root_from_pem(path)?;
            descriptor.knobs.root_der = root;
        }
        if !self.settings.is_empty() || self.root_pem.is_some() {
            descriptor.variant = format!("{}+custom", self.variant);
        }
        let image = vfirmware::build(&descriptor);
        let bytes = image.to_bytes();
        std::fs::write(&self.output, &bytes)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", self.output.display()))?;
        println!(
            "{}: {} bytes, variant {}",
            self.output.display(),
            bytes.len(),
            descriptor.variant
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The one certificate in a PEM file, as the `root_der` knob.
fn root_from_pem(path: &std::path::Path) -> Result<CompiledRoot> {
    let text = std::fs::read(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading --root-pem {}", path.display()))?;
    let certs = openssl::x509::X509::stack_from_pem(&text).unwrap_or_default();
    let [cert] = certs.as_slice() else {
        miette::bail!(miette::miette!(
            code = "hil::vfirmware::root_pem",
            help = "give the root certificate alone, e.g. the lab-root.pem `hil pki export` writes",
            "--root-pem {} holds {} certificate(s); a compiled-in root is exactly one",
            path.display(),
            certs.len()
        ));
    };
    let der = cert.to_der().into_diagnostic()?;
    CompiledRoot::from_der(der).map_err(|valid| {
        miette::miette!(
            code = "hil::vfirmware::root_pem",
            "--root-pem {}: the knob takes {valid}",
            path.display()
        )
    })
}

/// How `inspect` shows the compiled-in root: whose it is, not its bytes.
fn describe_root(root: &CompiledRoot) -> String {
    let Some(der) = root.der() else {
        return "(the production root)".into();
    };
    let sha256: Vec<String> = openssl::sha::sha256(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let subject = openssl::x509::X509::from_der(der)
        .ok()
        .map(|cert| {
            cert.subject_name()
                .entries()
                .map(|e| {
                    let key = e.object().nid().short_name().unwrap_or("?");
                    format!("{key}={}", String::from_utf8_lossy(e.data().as_slice()))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "not a certificate BearSSL can read".into());
    format!(
        "{subject}; {} bytes; sha256 {}",
        der.len(),
        sha256.join(":")
    )
}

/// Arguments of `hil vfirmware inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image file.
    image: PathBuf,
}

impl InspectArgs {
    fn run(self) -> Result<ExitCode> {
        let bytes = std::fs::read(&self.image)
            .into_diagnostic()
            .wrap_err_with(|| format!("reading {}", self.image.display()))?;
        let (image, descriptor) = vfirmware::inspect(&bytes).wrap_err_with(|| {
            format!("{} is not a virtual firmware image", self.image.display())
        })?;
        println!("image     {} ({} bytes)", self.image.display(), image.len());
        println!("entry     {:#010x}", image.entry());
        println!(
            "checksum  {:#04x} ({})",
            image.stored_checksum(),
            if image.checksum_ok() {
                "ok"
            } else {
                "MISMATCH"
            }
        );
        for segment in image.segments() {
            println!(
                "segment   {:#010x} {} bytes",
                segment.addr(),
                segment.data().len()
            );
        }
        println!("variant   {}", descriptor.variant);
        for (name, value) in descriptor.entries() {
            let value = if name == "root_der" {
                describe_root(&descriptor.knobs.root_der)
            } else {
                value
            };
            println!("  {name:<12} {value}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn list() -> Result<ExitCode> {
    println!("knobs: {}", KNOB_NAMES.join(", "));
    println!();
    for variant in Variant::ALL {
        let settings: Vec<String> = variant
            .settings()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let settings = if settings.is_empty() {
            "(defaults)".to_owned()
        } else {
            settings.join(" ")
        };
        println!("{:<20} {settings}", variant.as_str());
    }
    Ok(ExitCode::SUCCESS)
}
