#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Lockstep between the real-board sketch (`firmware-under-test/esp8266`) and this
//! twin: the same serial line formats (reference and seed style), the same
//! provisioning fields and compiled-in settings, the same BearSSL names, the same
//! timing, and one build flag per descriptor knob with a PlatformIO environment
//! per variant.
//!
//! Both sides are read as text: the sketch cannot be compiled here, and the twin's
//! private log module is not reachable from a test. The extraction is strict on
//! purpose: when either side changes alone, a test fails with a diff saying what
//! is only on one side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use regex::Regex;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails with one line per difference: `- x` only in the sketch, `+ x` only in
/// the twin (a multiset comparison, so a line printed twice counts twice).
fn assert_same(what: &str, sketch: Vec<String>, twin: Vec<String>) {
    fn count(items: Vec<String>) -> BTreeMap<String, usize> {
        let mut map = BTreeMap::new();
        for item in items {
            *map.entry(item).or_insert(0) += 1;
        }
        map
    }
    let (sketch, twin) = (count(sketch), count(twin));
    let keys: BTreeSet<&String> = sketch.keys().chain(twin.keys()).collect();
    let mut diff = Vec::new();
    for key in keys {
        let (s, t) = (
            sketch.get(key).copied().unwrap_or(0),
            twin.get(key).copied().unwrap_or(0),
        );
        for _ in t..s {
            diff.push(format!("  - {key:?}   (only in the sketch)"));
        }
        for _ in s..t {
            diff.push(format!("  + {key:?}   (only in the twin)"));
        }
    }
    assert!(
        diff.is_empty(),
        "{what}: the sketch (firmware-under-test/esp8266) and the twin disagree:\n{}\n\
         Change both sides together.",
        diff.join("\n")
    );
    assert!(
        !sketch.is_empty(),
        "{what}: nothing extracted (extraction broken?)"
    );
}

/// The body of the item starting at `start` up to the first line that is a lone
/// closing brace at column 0 (a top-level item's end).
fn item<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("`{start}` not found"));
    let rest = &text[at..];
    let end = rest.find("\n}\n").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

/// Every placeholder becomes `{}`: C conversions (`%s`, `%d`, `%u`, `%lu`,
/// `%02x`, ...) and Rust arguments (`{}`, `{name}`, `{0}`, `{:?}`).
fn normalise_c(format: &str) -> String {
    let conv = Regex::new(r"%[-+ 0#]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[diouxXscp]").unwrap();
    conv.replace_all(&format.replace("%%", "\u{1}"), "{}")
        .replace('\u{1}', "%")
}

fn normalise_rust(format: &str) -> String {
    let arg = Regex::new(r"\{[A-Za-z0-9_]*(?::[^}]*)?\}").unwrap();
    arg.replace_all(&format.replace("{{", "\u{1}").replace("}}", "\u{2}"), "{}")
        .replace('\u{1}', "{")
        .replace('\u{2}', "}")
}

fn unescape(literal: &str) -> String {
    literal.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// Format strings the sketch marks with `REF("...")` or `SEED("...")`.
fn sketch_formats(marker: &str) -> Vec<String> {
    let text = read("esp8266/src/log.cpp");
    let re = Regex::new(&format!(r#"\b{marker}\("((?:[^"\\]|\\.)*)"\)"#)).unwrap();
    re.captures_iter(&text)
        // The macro definitions themselves (`REF(fmt)`) have no string argument.
        .map(|c| normalise_c(&unescape(&c[1])))
        .collect()
}

/// The lines one of the twin's render functions can produce.
fn twin_formats(function: &str) -> Vec<String> {
    let text = read("twin/src/log.rs");
    let body = item(&text, &format!("fn {function}("));
    let format = Regex::new(r#"format!\(\s*"((?:[^"\\]|\\.)*)""#).unwrap();
    let literal = Regex::new(r#""((?:[^"\\]|\\.)*)"\.into\(\)"#).unwrap();
    let mut out: Vec<String> = format
        .captures_iter(body)
        .map(|c| normalise_rust(&unescape(&c[1])))
        .collect();
    out.extend(literal.captures_iter(body).map(|c| unescape(&c[1])));
    // An empty line, and a value printed on a line of its own.
    out.extend(body.matches("String::new()").map(|_| String::new()));
    out.extend(
        Regex::new(r"\b\w+\.clone\(\)\]")
            .unwrap()
            .find_iter(body)
            .map(|_| "{}".to_owned()),
    );
    out
}

#[test]
fn reference_log_lines_match_the_twin() {
    assert_same(
        "reference log line formats",
        sketch_formats("REF"),
        twin_formats("reference"),
    );
}

#[test]
fn seed_style_log_lines_match_the_twin() {
    assert_same(
        "seed-style log line formats",
        sketch_formats("SEED"),
        twin_formats("seed"),
    );
}

#[test]
fn provisioning_errors_match_the_twin() {
    let twin = read("contract/src/provision.rs");
    let error = Regex::new(r#"#\[error\("([^"]*)"\)\]"#).unwrap();
    let twin: Vec<String> = error
        .captures_iter(&twin)
        .map(|c| normalise_rust(&c[1]))
        .collect();
    let sketch = read("esp8266/src/provision.cpp");
    let mut found: Vec<String> = Vec::new();
    if sketch.contains(r#"F("bad-base64")"#) {
        found.push("bad-base64".into());
    }
    if sketch.contains(r#"F("bad-json:")"#) {
        // The sketch appends the reason after the prefix.
        found.push("bad-json:{}".into());
    }
    assert_same("PROV error reasons", found, twin);
}

/// Dotted paths of every serde field reachable from `Settings`.
fn twin_provision_fields() -> Vec<String> {
    let text = read("contract/src/provision.rs");
    assert!(
        !text.contains("serde(rename") && !text.contains("rename_all"),
        "provision.rs renames serde fields: teach this test the renames"
    );
    let structs: BTreeMap<String, Vec<(String, String)>> =
        Regex::new(r"(?s)pub struct (\w+) \{(.*?)\n\}")
            .unwrap()
            .captures_iter(&text)
            .map(|c| {
                let fields = Regex::new(r"pub (\w+): ([\w<>]+),")
                    .unwrap()
                    .captures_iter(&c[2])
                    .map(|f| (f[1].to_owned(), f[2].to_owned()))
                    .collect();
                (c[1].to_owned(), fields)
            })
            .collect();
    fn walk(
        structs: &BTreeMap<String, Vec<(String, String)>>,
        name: &str,
        prefix: &str,
        out: &mut Vec<String>,
    ) {
        for (field, ty) in &structs[name] {
            let path = format!("{prefix}{field}");
            out.push(path.clone());
            let inner = ty.trim_start_matches("Option<").trim_end_matches('>');
            if structs.contains_key(inner) {
                walk(structs, inner, &format!("{path}."), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&structs, "Settings", "", &mut out);
    out
}

/// Dotted paths the sketch reads from the JSON document (`doc["a"]["b"]`), with
/// every prefix (reading `wifi.ssid` implies an object `wifi`).
fn sketch_provision_fields() -> Vec<String> {
    let text = read("esp8266/src/provision.cpp");
    let chain = Regex::new(r#"\bdoc((?:\["\w+"\])+)"#).unwrap();
    let key = Regex::new(r#"\["(\w+)"\]"#).unwrap();
    let mut paths = BTreeSet::new();
    for c in chain.captures_iter(&text) {
        let keys: Vec<&str> = key
            .captures_iter(&c[1])
            .map(|k| k.get(1).unwrap().as_str())
            .collect();
        for n in 1..=keys.len() {
            paths.insert(keys[..n].join("."));
        }
    }
    paths.into_iter().collect()
}

#[test]
fn provisioning_fields_match_the_twin() {
    assert_same(
        "PROV JSON fields",
        sketch_provision_fields(),
        twin_provision_fields(),
    );
}

#[test]
fn compiled_in_settings_match_the_twin() {
    let twin = read("contract/src/provision.rs");
    let body = item(&twin, "pub fn compiled_in_for(");
    let literal = Regex::new(r#""([^"]*)"\.into\(\)"#).unwrap();
    let mut expected: Vec<String> = literal
        .captures_iter(body)
        .map(|c| c[1].to_owned())
        .collect();
    let port = Regex::new(r"port: (\d+),").unwrap();
    expected.push(format!("port={}", &port.captures(body).unwrap()[1]));
    let interval = Regex::new(r"fn default_interval\(\) -> u64 \{\s*(\d+)").unwrap();
    expected.push(format!(
        "interval={}",
        &interval.captures(&twin).unwrap()[1]
    ));
    // The broker and the root come from knobs (compared with the build flags'
    // defaults in every_knob_has_a_build_flag).
    let from_knobs = |text: &str, pattern: &str, what: &str| {
        assert!(
            Regex::new(pattern).unwrap().is_match(text),
            "{what}: `{pattern}` not found"
        );
    };
    from_knobs(
        body,
        r"host: knobs\.broker_host\.clone\(\)",
        "the twin's compiled-in broker host",
    );
    from_knobs(
        body,
        r"knobs\s*\.root_der\s*\.pem\(\)\s*\.unwrap_or_else\(\|\| PRODUCTION_ROOT_PEM\.into\(\)\)",
        "the twin's compiled-in root",
    );

    let sketch = read("esp8266/src/provision.cpp");
    let body = item(&sketch, "Settings compiledIn()");
    let mut found: Vec<String> = Regex::new(r#"F\("([^"]*)"\)"#)
        .unwrap()
        .captures_iter(body)
        .map(|c| c[1].to_owned())
        .collect();
    found.push(format!(
        "port={}",
        &Regex::new(r"brokerPort = (\d+);")
            .unwrap()
            .captures(body)
            .unwrap()[1]
    ));
    found.push(format!(
        "interval={}",
        &Regex::new(r"publishIntervalMs = (\d+);")
            .unwrap()
            .captures(body)
            .unwrap()[1]
    ));
    assert_same("compiled-in settings", found, expected);
    from_knobs(
        body,
        r"s\.brokerHost = knobs::kBrokerHost;",
        "the sketch's compiled-in broker host",
    );
    from_knobs(
        body,
        r"s\.caPem = FPSTR\(compiledRootPem\(\)\);",
        "the sketch's compiled-in root",
    );
    let root = read("esp8266/src/compiled_root.h");
    for pattern in [
        r"(?m)^#if defined\(HIL_LAB_ROOT_HEADER\)\n(?://.*\n)*#include HIL_LAB_ROOT_HEADER$",
        r"return HIL_LAB_ROOT_PEM;",
        r"return kProductionRootPem;",
    ] {
        from_knobs(&root, pattern, "esp8266/src/compiled_root.h");
    }

    // The production root: byte for byte the same PEM.
    let header = read("esp8266/src/production_root.h");
    let pem = Regex::new(r#"(?s)R"PEM\((.*?)\)PEM""#)
        .unwrap()
        .captures(&header)
        .unwrap()[1]
        .to_owned();
    assert_eq!(
        pem,
        read("contract/src/production-root.pem"),
        "esp8266/src/production_root.h and contract/src/production-root.pem differ"
    );
}

#[test]
fn bearssl_names_match_the_twin() {
    let sketch = read("esp8266/src/bearssl_names.cpp");
    // Sets, not multisets: the twin's docs mention some names twice.
    let names = |re: &str, text: &str| -> Vec<String> {
        Regex::new(re)
            .unwrap()
            .captures_iter(text)
            .map(|c| c[1].to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_same(
        "BearSSL error names",
        names(r"HIL_ERR_CASE\((BR_ERR_\w+)\)", &sketch),
        names(r#""(BR_ERR_\w+)""#, &read("contract/src/bearssl.rs")),
    );
    assert_same(
        "cipher suite names",
        names(r"HIL_SUITE_CASE\((TLS_\w+)\)", &sketch),
        names(r#"=> "(TLS_\w+)""#, &read("twin/src/tls/names.rs")),
    );
}

#[test]
fn timing_matches_the_twin() {
    // The TLS timeout belongs to the TLS client, the rest to the firmware.
    let twin = read("twin/src/firmware.rs") + &read("twin/src/tls/mod.rs");
    let sketch = read("esp8266/src/config.h");
    let twin_ms = |name: &str| -> u64 {
        let ms = Regex::new(&format!(r"const {name}: u64 = ([\d_]+);")).unwrap();
        if let Some(c) = ms.captures(&twin) {
            return c[1].replace('_', "").parse().unwrap();
        }
        let secs = Regex::new(&format!(
            r"const {name}: Duration = Duration::from_secs\((\d+)\);"
        ))
        .unwrap();
        let c = secs
            .captures(&twin)
            .unwrap_or_else(|| panic!("{name} not found in firmware.rs or tls/mod.rs"));
        c[1].parse::<u64>().unwrap() * 1000
    };
    let sketch_ms = |name: &str| -> u64 {
        let re = Regex::new(&format!(r"constexpr uint32_t {name} = (\d+);")).unwrap();
        re.captures(&sketch)
            .unwrap_or_else(|| panic!("{name} not found in config.h"))[1]
            .parse()
            .unwrap()
    };
    let backoff = Regex::new(r"\((\d+)u64 << attempt\.min\(\d+\)\)\.min\(([\d_]+)\)")
        .unwrap()
        .captures(&twin)
        .expect("the backoff formula in firmware.rs changed: update this test");
    let pairs = [
        (
            "PROVISIONING_WINDOW_MS",
            twin_ms("PROVISIONING_WINDOW_MS"),
            "kProvisioningWindowMs",
        ),
        ("NTP_TIMEOUT", twin_ms("NTP_TIMEOUT"), "kNtpTimeoutMs"),
        ("WIFI_RETRY", twin_ms("WIFI_RETRY"), "kWifiRetryMs"),
        ("HEAP_PERIOD", twin_ms("HEAP_PERIOD"), "kHeapPeriodMs"),
        ("TLS_TIMEOUT_MS", twin_ms("TLS_TIMEOUT_MS"), "kTlsTimeoutMs"),
        (
            "backoff start",
            backoff[1].parse().unwrap(),
            "kBackoffFirstMs",
        ),
        (
            "backoff cap",
            backoff[2].replace('_', "").parse().unwrap(),
            "kBackoffMaxMs",
        ),
    ];
    let twin_side = pairs.iter().map(|(n, v, _)| format!("{n}={v}")).collect();
    let sketch_side = pairs
        .iter()
        .map(|(n, _, s)| format!("{n}={}", sketch_ms(s)))
        .collect();
    assert_same("timing constants (ms)", sketch_side, twin_side);
}

/// The sketch's build flag for each knob value: `(knob, value, flag)`. A value of
/// `*` means the flag carries the value (`-DHIL_RX_BUFFER=512`, a C string for
/// `HIL_BROKER_HOST`), [`FILE`] that it names a file holding it; enum knobs get
/// one flag per non-default value, and a value with a parameter (`fixed:<duration>`,
/// its form in the knob's `FORMS`) a flag that carries the parameter (see
/// [`parameter_flag`]). Keep this table in step with
/// esp8266/src/config.h (and compiled_root.h, which reads the root's header).
const FLAGS: &[(&str, &str, &str)] = &[
    ("name", "*", "HIL_FW_NAME"),
    ("version", "*", "HIL_FW_VERSION"),
    ("trust", "insecure", "HIL_TRUST_INSECURE"),
    ("trust", "fingerprint", "HIL_TRUST_FINGERPRINT"),
    ("trust", "known-key", "HIL_TRUST_KNOWN_KEY"),
    ("trust", "self-signed", "HIL_TRUST_SELF_SIGNED"),
    ("anchor", "issuer", "HIL_ANCHOR_ISSUER"),
    ("ca", "malformed", "HIL_CA_MALFORMED"),
    ("fallback", "insecure", "HIL_FALLBACK_INSECURE"),
    (
        "fallback",
        "insecure-after:<N>",
        "HIL_FALLBACK_INSECURE_AFTER",
    ),
    ("clock", "uptime", "HIL_CLOCK_UPTIME"),
    ("clock", "build-time", "HIL_CLOCK_BUILD_TIME"),
    ("build_time", "*", "HIL_BUILD_TIME"),
    ("connect", "ip", "HIL_CONNECT_BY_IP"),
    ("rx_buffer", "*", "HIL_RX_BUFFER"),
    ("tx_buffer", "*", "HIL_TX_BUFFER"),
    ("log", "seed", "HIL_LOG_SEED"),
    ("publish", "every-loop", "HIL_PUBLISH_EVERY_LOOP"),
    ("subscribe", "first-connect", "HIL_SUBSCRIBE_FIRST_CONNECT"),
    ("reconnect", "immediate", "HIL_RECONNECT_IMMEDIATE"),
    ("reconnect", "fixed:<duration>", "HIL_RECONNECT_FIXED_MS"),
    ("crash", "after-connect", "HIL_CRASH_AFTER_CONNECT"),
    (
        "crash",
        "restart-after-connect",
        "HIL_CRASH_RESTART_AFTER_CONNECT",
    ),
    ("crash", "wdt-after-connect", "HIL_CRASH_WDT_AFTER_CONNECT"),
    ("mqtt_buffer", "*", "HIL_MQTT_BUFFER"),
    ("broker_host", "*", "HIL_BROKER_HOST"),
    ("root_der", FILE, "HIL_LAB_ROOT_HEADER"),
];

/// In [`FLAGS`]: the flag names a file that carries the value (a header from
/// `hil pki export` for `root_der`); without the flag the knob keeps its default.
const FILE: &str = "<file>";

/// What descriptor.rs says: knob names, each knob's type, each enum's values
/// (ident -> text), the defaults (text) and each variant's settings.
struct Descriptor {
    knobs: Vec<String>,
    types: BTreeMap<String, String>,
    enums: BTreeMap<String, Vec<(String, String)>>,
    defaults: BTreeMap<String, String>,
    variants: Vec<(String, Vec<(String, String)>)>,
}

fn descriptor() -> Descriptor {
    let text = read("contract/src/descriptor.rs");
    let list = item(&text, "pub const KNOB_NAMES");
    let knobs = Regex::new(r#""(\w+)""#)
        .unwrap()
        .captures_iter(list)
        .map(|c| c[1].to_owned())
        .collect();
    let types = Regex::new(r"pub (\w+): (\w+),")
        .unwrap()
        .captures_iter(item(&text, "pub struct Knobs"))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    let value = Regex::new(r#"(\w+) => "([\w-]+)""#).unwrap();
    let name = Regex::new(r"(?m)^\s*(\w+) \{\s*$").unwrap();
    let mut enums = BTreeMap::new();
    for chunk in text.split("knob_enum!(").skip(1) {
        let chunk = &chunk[..chunk.find("\n);").unwrap_or(chunk.len())];
        let Some(n) = name.captures(chunk) else {
            continue;
        };
        let values: Vec<(String, String)> = value
            .captures_iter(chunk)
            .map(|c| (c[1].to_owned(), c[2].to_owned()))
            .collect();
        enums.insert(n[1].to_owned(), values);
    }
    let mut defaults = BTreeMap::new();
    let default_body = item(&text, "impl Default for Knobs");
    for c in Regex::new(r"(\w+): (\w+)::(\w+),")
        .unwrap()
        .captures_iter(default_body)
    {
        // A knob with parameterised values (not a knob_enum!) is checked
        // against its FORMS instead.
        let Some(values) = enums.get(&c[2]) else {
            continue;
        };
        let text = values
            .iter()
            .find(|(ident, _)| *ident == c[3])
            .unwrap()
            .1
            .clone();
        defaults.insert(c[1].to_owned(), text);
    }
    for c in Regex::new(r#"(\w+): "([^"]*)"\.into\(\),"#)
        .unwrap()
        .captures_iter(default_body)
    {
        defaults.insert(c[1].to_owned(), c[2].to_owned());
    }
    for c in Regex::new(r"(\w+): ([\d_]+),")
        .unwrap()
        .captures_iter(default_body)
    {
        defaults.insert(c[1].to_owned(), c[2].replace('_', ""));
    }
    let variant_text: BTreeMap<String, String> = enums["Variant"].iter().cloned().collect();
    let pair = Regex::new(r#"\("(\w+)", "([^"]+)"\)"#).unwrap();
    let variants = Regex::new(r"Variant::(\w+) => &\[(.*?)\],")
        .unwrap()
        .captures_iter(item(&text, "pub const fn settings"))
        .map(|c| {
            let settings = pair
                .captures_iter(&c[2])
                .map(|p| (p[1].to_owned(), p[2].to_owned()))
                .collect();
            (variant_text[&c[1]].clone(), settings)
        })
        .collect();
    Descriptor {
        knobs,
        types,
        enums,
        defaults,
        variants,
    }
}

/// The flag for a value with a parameter, `-DFLAG=<the parameter as the sketch
/// takes it>`: `fixed:5s` is `-DHIL_RECONNECT_FIXED_MS=5000`.
fn parameter_flag(knob: &str, value: &str) -> Option<String> {
    let (kind, parameter) = value.split_once(':')?;
    let (_, _, flag) = FLAGS
        .iter()
        .find(|(k, v, _)| *k == knob && v.split_once(':').is_some_and(|(p, _)| p == kind))?;
    let mut d = hil_twin::descriptor::Variant::Reference.descriptor();
    d.set(knob, value)
        .unwrap_or_else(|e| panic!("{knob}={value}: {e}"));
    let value = match d.knobs.reconnect {
        hil_twin::descriptor::Reconnect::Fixed { ms } if knob == "reconnect" => ms.to_string(),
        _ => parameter.to_owned(),
    };
    Some(format!("-D{flag}={value}"))
}

/// The `-D` flag that sets `knob` to `value`.
fn flag_for(knob: &str, value: &str) -> String {
    if let Some((_, _, flag)) = FLAGS.iter().find(|(k, v, _)| *k == knob && *v == value) {
        return format!("-D{flag}");
    }
    if let Some(flag) = parameter_flag(knob, value) {
        return flag;
    }
    let (_, _, flag) = FLAGS
        .iter()
        .find(|(k, v, _)| *k == knob && *v == "*")
        .unwrap_or_else(|| panic!("no build flag for {knob}={value}: extend FLAGS and config.h"));
    format!("-D{flag}={value}")
}

#[test]
fn every_knob_has_a_build_flag() {
    let d = descriptor();
    assert!(d.knobs.len() > 10, "KNOB_NAMES extraction is broken");
    let mapped: Vec<String> = FLAGS
        .iter()
        .map(|(k, _, _)| k.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_same(
        "knobs with a build flag (FLAGS table vs KNOB_NAMES)",
        mapped,
        d.knobs.clone(),
    );

    // Enum knobs: a flag for every value but the default.
    let mut flagged = Vec::new();
    let mut expected = Vec::new();
    for knob in &d.knobs {
        let ty = &d.types[knob];
        let Some(values) = d.enums.get(ty) else {
            continue;
        };
        for (_, text) in values {
            if *text != d.defaults[knob] {
                expected.push(format!("{knob}={text}"));
            }
        }
        flagged.extend(
            FLAGS
                .iter()
                .filter(|(k, _, _)| k == knob)
                .map(|(k, v, _)| format!("{k}={v}")),
        );
    }
    // Knobs whose values carry a parameter: a flag for every form but the
    // default (FORMS in descriptor.rs lists them).
    use hil_twin::descriptor::{Fallback, Knobs, Reconnect};
    let defaults = Knobs::default();
    for (knob, forms, default) in [
        ("fallback", Fallback::FORMS, defaults.fallback.to_string()),
        (
            "reconnect",
            Reconnect::FORMS,
            defaults.reconnect.to_string(),
        ),
    ] {
        assert!(
            !d.enums.contains_key(&d.types[knob]),
            "{knob} is a knob_enum again: drop it from this loop"
        );
        expected.extend(
            forms
                .iter()
                .filter(|f| **f != default)
                .map(|f| format!("{knob}={f}")),
        );
        flagged.extend(
            FLAGS
                .iter()
                .filter(|(k, _, _)| k == &knob)
                .map(|(k, v, _)| format!("{k}={v}")),
        );
    }
    assert_same("enum knob values with a flag", flagged, expected);
    assert_eq!(
        flag_for("reconnect", "fixed:5s"),
        "-DHIL_RECONNECT_FIXED_MS=5000"
    );
    assert_eq!(
        flag_for("reconnect", "fixed:500ms"),
        "-DHIL_RECONNECT_FIXED_MS=500"
    );
    assert_eq!(
        flag_for("fallback", "insecure-after:2"),
        "-DHIL_FALLBACK_INSECURE_AFTER=2"
    );

    // The flags config.h (and compiled_root.h) read are exactly the table's.
    let config = read("esp8266/src/config.h");
    let readers = config.clone() + &read("esp8266/src/compiled_root.h");
    let used: BTreeSet<String> = Regex::new(r"(?:defined\(|#ifndef |#ifdef )(HIL_[A-Z0-9_]+)")
        .unwrap()
        .captures_iter(&readers)
        .map(|c| c[1].to_owned())
        .collect();
    let table: BTreeSet<String> = FLAGS.iter().map(|(_, _, f)| f.to_string()).collect();
    assert_same(
        "HIL_* flags (config.h vs FLAGS table)",
        used.into_iter().collect(),
        table.into_iter().collect(),
    );

    // Valued knobs default to the twin's defaults.
    let mut sketch_defaults = Vec::new();
    let mut twin_defaults = Vec::new();
    for (knob, _, flag) in FLAGS.iter().filter(|(_, v, _)| *v == "*") {
        let re = Regex::new(&format!(r"#define {flag} (\S+)")).unwrap();
        let value = re
            .captures(&config)
            .unwrap_or_else(|| panic!("config.h has no default for {flag}"))[1]
            .to_owned();
        // A C string's quotes are the flag's syntax, not the value's.
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(&value);
        sketch_defaults.push(format!("{knob}={value}"));
        twin_defaults.push(format!("{knob}={}", d.defaults[*knob]));
    }
    assert_same("knob defaults", sketch_defaults, twin_defaults);

    // A file knob has no default in config.h: without the flag the sketch keeps
    // what the twin's default stands for (the production root).
    for (knob, _, flag) in FLAGS.iter().filter(|(_, v, _)| *v == FILE) {
        assert!(
            !config.contains(&format!("#define {flag}")),
            "config.h gives {flag} a default: a file knob has none"
        );
        let default = item(
            &read("contract/src/descriptor.rs"),
            "impl Default for Knobs",
        )
        .to_owned();
        assert!(
            default.contains(&format!("{knob}: CompiledRoot::production(),")),
            "the twin's default {knob} is not the production root"
        );
    }
}

/// Every knob constant config.h defines is read by the sketch: a flag that
/// compiles but changes nothing would make its variant env build the reference.
#[test]
fn every_knob_constant_is_used_by_the_sketch() {
    let config = read("esp8266/src/config.h");
    let start = config
        .find("namespace knobs {")
        .expect("config.h has no knobs namespace");
    let end = config[start..]
        .find("}  // namespace knobs")
        .expect("the knobs namespace is not closed as expected");
    // A set: a constant has one definition per #if branch.
    let constants: BTreeSet<String> = Regex::new(r"constexpr [\w:* ]+?\b(k\w+) =")
        .unwrap()
        .captures_iter(&config[start..start + end])
        .map(|c| c[1].to_owned())
        .collect();
    assert!(constants.len() > 10, "knob constant extraction is broken");
    let sketch: String = ["main.cpp", "log.cpp", "provision.cpp"]
        .iter()
        .map(|f| read(&format!("esp8266/src/{f}")))
        .collect();
    let unused: Vec<&String> = constants
        .iter()
        .filter(|k| !sketch.contains(&format!("knobs::{k}")))
        .collect();
    assert!(
        unused.is_empty(),
        "config.h knob constants the sketch never reads: {unused:?}"
    );
}

/// `[env:NAME]` sections of platformio.ini and the `-DHIL_*` flags each sets.
fn pio_envs() -> BTreeMap<String, Vec<String>> {
    let ini = read("esp8266/platformio.ini");
    let mut envs = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in ini.lines().map(str::trim) {
        if line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = section.strip_prefix("env:").map(str::to_owned);
            if let Some(name) = &current {
                envs.insert(name.clone(), Vec::new());
            }
            continue;
        }
        if let Some(name) = &current {
            let flags = envs.get_mut(name).unwrap();
            flags.extend(
                line.split_whitespace()
                    .filter(|t| t.starts_with("-DHIL_"))
                    .map(str::to_owned),
            );
        }
    }
    envs
}

#[test]
fn every_variant_has_a_platformio_env_with_its_flags() {
    let d = descriptor();
    assert!(
        d.variants.len() > 10,
        "Variant::settings extraction is broken"
    );
    let envs = pio_envs();
    for board in ["nodemcuv2", "d1_mini"] {
        assert_eq!(
            envs.get(board),
            Some(&Vec::new()),
            "[env:{board}] must build the reference firmware (no HIL_* flags)"
        );
    }
    let mut sketch = Vec::new();
    let mut twin = Vec::new();
    for (variant, settings) in &d.variants {
        if variant == "reference" {
            continue;
        }
        let mut want: Vec<String> = settings.iter().map(|(k, v)| flag_for(k, v)).collect();
        want.push(flag_for("name", &format!("hil-{variant}")));
        want.sort();
        twin.push(format!("[env:{variant}] {}", want.join(" ")));
        let mut got = envs.get(variant.as_str()).cloned().unwrap_or_default();
        got.sort();
        sketch.push(format!("[env:{variant}] {}", got.join(" ")));
    }
    assert_same("variant environments in platformio.ini", sketch, twin);
}

#[test]
fn normalisation_treats_both_languages_alike() {
    assert_eq!(
        normalise_c("a=%s b=%u c=%d d=%lu e=%02x f=%%"),
        "a={} b={} c={} d={} e={} f=%"
    );
    assert_eq!(
        normalise_rust("a={a} b={} c={0} d={x:?} e={{}}"),
        "a={} b={} c={} d={} e={}"
    );
}

#[test]
fn telemetry_payload_and_client_id_match_the_twin() {
    let twin = read("twin/src/firmware.rs");
    let sketch = read("esp8266/src/main.cpp");
    let rust = |pattern: &str| -> String {
        let re = Regex::new(pattern).unwrap();
        normalise_rust(&unescape(
            &re.captures(&twin)
                .unwrap_or_else(|| panic!("{pattern} not found in firmware.rs"))[1],
        ))
    };
    let c = |pattern: &str| -> String {
        let re = Regex::new(pattern).unwrap();
        normalise_c(&unescape(
            &re.captures(&sketch)
                .unwrap_or_else(|| panic!("{pattern} not found in main.cpp"))[1],
        ))
    };
    assert_same(
        "telemetry payload and default client id",
        vec![
            c(r#"snprintf\(payload, sizeof payload, "((?:[^"\\]|\\.)*)""#),
            c(r#"snprintf\(id, sizeof id, "((?:[^"\\]|\\.)*)""#),
        ],
        vec![
            rust(r#"let payload = format!\(\s*"((?:[^"\\]|\\.)*)""#),
            rust(r#"format!\(\s*"(ESP8266-(?:[^"\\]|\\.)*)""#),
        ],
    );
}

#[test]
fn trust_mode_names_match_the_twin() {
    let twin = read("twin/src/firmware.rs");
    let twin: Vec<String> = Regex::new(r#"TrustMode::\w+(?:\(_\))? => "([\w-]+)""#)
        .unwrap()
        .captures_iter(item(&twin, "fn mode_name("))
        .map(|c| c[1].to_owned())
        .collect();
    let sketch = read("esp8266/src/main.cpp");
    let sketch: BTreeSet<String> = Regex::new(r#"trustMode = "([\w-]+)";"#)
        .unwrap()
        .captures_iter(&sketch)
        .map(|c| c[1].to_owned())
        .collect();
    assert_same(
        "[tls] connecting mode= names",
        sketch.into_iter().collect(),
        twin,
    );
}
