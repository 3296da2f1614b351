//! Fuzz targets: one function per parser of untrusted input, each taking any bytes.
//!
//! Every target feeds the bytes to the parser the way the harness does and then
//! checks what the parser promises beyond "no panic": framings round-trip, decoders
//! give the same result however the bytes are split across reads, nothing decoded
//! is larger than what came in. A broken promise is a panic, which is what a fuzzing
//! engine reports as a crash.
//!
//! The engine lives outside the workspace (`harness/fuzz`, run by `ci/fuzz`); the
//! corpora it leaves in `harness/fuzz/corpora/<target>/` are replayed by the
//! `fuzz_corpora` test. Not a stable API: it exists for those two.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::crash::{self, Crash};
use crate::image::ImageV1;
use crate::lab::mqtt::codec::{self, Packet};
use crate::lab::tls::hello;
use crate::logprofile::LogProfile;
use crate::runner::steps;
use crate::runner::{CheckContext, Selection, Suite, TagFilter};
use crate::serial::rfc2217_client::Negotiator;
use crate::serial::LineSplitter;
use crate::telnet::{self, Token};
use crate::vboard::flash::Flash;
use crate::vboard::loader::{Effect, Efuse, Loader};
use crate::vboard::rfc2217::{Incoming, Server};
use hil_contract::descriptor::Descriptor;
use hil_contract::provision;
use hil_contract::slip;

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name: the corpus directory and the argument of `ci/fuzz`.
    pub name: &'static str,
    /// What it drives.
    pub what: &'static str,
    /// Runs one input; panics when a promise is broken.
    pub run: fn(&[u8]),
}

/// Every target, in the order the README lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "feature",
        what: "feature files (Suite::load), the step vocabulary and tag expressions",
        run: feature,
    },
    Target {
        name: "logprofile",
        what: "log-profile files and the line matcher",
        run: logprofile,
    },
    Target {
        name: "telnet",
        what: "the Telnet decoder and both ends of RFC 2217",
        run: telnet,
    },
    Target {
        name: "slip",
        what: "SLIP framing",
        run: slip,
    },
    Target {
        name: "loader",
        what: "the virtual board's ROM loader and stub commands",
        run: loader,
    },
    Target {
        name: "hello",
        what: "TLS record scanning and the ClientHello parser",
        run: hello,
    },
    Target {
        name: "mqtt",
        what: "the lab's MQTT 3.1.1 decoder",
        run: mqtt,
    },
    Target {
        name: "image",
        what: "ESP8266 v1 images and firmware descriptors",
        run: image,
    },
    Target {
        name: "prov",
        what: "the firmware's PROV line",
        run: prov,
    },
    Target {
        name: "crash",
        what: "serial line splitting and crash dumps",
        run: crash,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The corpus directory of `target` in this source tree.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpora")
        .join(target)
}

/// The input cut into reads of a size the input itself picks (1 to 13 bytes), so
/// the engine explores splits while one input always splits the same way.
fn reads(data: &[u8]) -> std::slice::Chunks<'_, u8> {
    let size = 1 + usize::from(data.first().copied().unwrap_or(0) % 13);
    data.chunks(size)
}

// --- feature files, steps, tags ------------------------------------------------

/// The first line is a tag expression, the rest a feature file; every line that
/// starts with a step keyword is also tried as a step, whether or not the file
/// is valid Gherkin.
pub fn feature(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let filter = tags(first);
    for line in text.lines() {
        let line = line.trim();
        let step = ["Given ", "When ", "Then ", "And ", "But ", "* "]
            .iter()
            .find_map(|k| line.strip_prefix(k));
        match step.map(steps::parse) {
            Some(Ok(parsed)) => {
                let _ = format!("{parsed:?}");
            }
            Some(Err(e)) => {
                let _ = e.to_string();
            }
            None => {}
        }
    }
    suite(rest, filter);
}

/// Parses a tag expression; one that parses evaluates on tag sets made of its own
/// words, and prints as text that parses to the same selection.
fn tags(text: &str) -> Option<TagFilter> {
    let filter = match text.parse::<TagFilter>() {
        Ok(filter) => filter,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix('@'))
        .map(str::to_owned)
        .collect();
    let again = match filter.to_string().parse::<TagFilter>() {
        Ok(again) => again,
        Err(e) => panic!("{filter} parsed, but its printed form does not: {e}"),
    };
    let mut sets: Vec<Vec<String>> = vec![Vec::new(), words.clone()];
    sets.extend(words.iter().map(|w| vec![w.clone()]));
    sets.push(words.iter().step_by(2).cloned().collect());
    for set in &sets {
        assert_eq!(
            filter.matches(set),
            again.matches(set),
            "{filter} selects {set:?} differently once printed and parsed again"
        );
    }
    Some(filter)
}

fn suite(text: &str, tags: Option<TagFilter>) {
    let path = std::env::temp_dir().join(format!(
        "hil-fuzz-{}-{:?}.feature",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let check = CheckContext {
        log_profiles: Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/log-profiles"),
    };
    let selection = Selection {
        tags: tags.clone(),
        shard: None,
    };
    let loaded = Suite::load(std::slice::from_ref(&path), &selection, &check);
    let _ = std::fs::remove_file(&path);
    match loaded {
        Ok(suite) => {
            assert!(suite.scenarios().len() <= suite.total());
            for scenario in suite.scenarios() {
                let _ = scenario.location();
                if let Some(tags) = &tags {
                    assert!(
                        tags.matches(&scenario.tags),
                        "{tags} kept a scenario tagged {:?}",
                        scenario.tags
                    );
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// --- log profiles ----------------------------------------------------------------

/// Before the first NUL: a profile file; after it: serial lines (without a NUL,
/// the whole input is both). Lines go through the reference profile and, when it
/// parses, the fuzzed one.
pub fn logprofile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (profile_text, lines) = text.split_once('\0').unwrap_or((&text, &text));
    static REFERENCE: OnceLock<LogProfile> = OnceLock::new();
    let mut profiles = vec![REFERENCE.get_or_init(LogProfile::reference).clone()];
    match LogProfile::parse(profile_text, Path::new("fuzz.toml")) {
        Ok(profile) => {
            assert!(profile.events().count() <= profile_text.len());
            profiles.push(profile);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    for line in lines.lines() {
        for profile in &profiles {
            let first = profile.recognise(line);
            let all = profile.recognise_all(line);
            assert_eq!(
                first.as_ref(),
                all.first(),
                "recognise and recognise_all disagree on {line:?}"
            );
            for recognised in &all {
                assert!(profile.reports(recognised.event));
                for value in recognised.fields.values() {
                    assert!(
                        line.contains(value.as_str()),
                        "a field that is not in the line"
                    );
                }
            }
        }
    }
}

// --- Telnet and RFC 2217 ---------------------------------------------------------

fn telnet_tokens<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<Token> {
    let mut decoder = telnet::Decoder::default();
    let mut tokens = Vec::new();
    for piece in pieces {
        decoder.feed(piece, &mut |t| tokens.push(t));
    }
    tokens
}

/// Checks bytes one end sends the other: complete commands only, no data. A data
/// byte sent after them must come out as data, so nothing is left half-way.
fn assert_only_commands(bytes: &[u8], who: &str) {
    let mut probe = bytes.to_vec();
    probe.push(b'x');
    let tokens = telnet_tokens([probe.as_slice()]);
    let (last, commands) = tokens
        .split_last()
        .unwrap_or_else(|| panic!("{who}'s answers swallowed a following data byte"));
    assert_eq!(
        last,
        &Token::Data(b'x'),
        "{who}'s answers leave the stream mid-command"
    );
    for token in commands {
        assert!(
            !matches!(token, Token::Data(_)),
            "{who} answers with data: {bytes:02x?}"
        );
    }
}

/// The Telnet decoder, the virtual board's RFC 2217 server and the client's
/// negotiator, each fed the same stream.
pub fn telnet(data: &[u8]) {
    let whole = telnet_tokens([data]);
    let split = telnet_tokens(reads(data));
    assert_eq!(whole, split, "tokens depend on how the bytes were read");
    let data_bytes = whole.iter().filter(|t| matches!(t, Token::Data(_))).count();
    assert!(data_bytes <= data.len(), "more data out than bytes in");
    for token in &whole {
        if let Token::Sub(sub) = token {
            assert!(sub.len() <= telnet::MAX_SB);
        }
    }

    let mut server = Server::new(115_200);
    let mut forwarded = 0usize;
    for piece in reads(data) {
        for incoming in server.feed(piece) {
            match incoming {
                Incoming::Data(bytes) => {
                    assert!(!bytes.is_empty());
                    forwarded += bytes.len();
                }
                Incoming::Port(_) => {}
            }
        }
    }
    assert_eq!(forwarded, data_bytes, "the server lost or made up data");
    assert_only_commands(&server.take_replies(), "the server");

    let mut client = Negotiator::new();
    let mut replies = Vec::new();
    for piece in reads(data) {
        replies.extend(client.absorb(piece));
    }
    assert_eq!(
        client.rx.len(),
        data_bytes,
        "the client lost or made up data"
    );
    // Each answer (3 bytes) answers a negotiation (3 bytes).
    assert!(replies.len() <= data.len(), "the client answers too much");
    assert_only_commands(&replies, "the client");
}

// --- SLIP and the loader ------------------------------------------------------------

/// SLIP decoding, split-independence, and encode/decode round trips.
pub fn slip(data: &[u8]) {
    let mut whole = slip::Decoder::new();
    let frames = whole.feed(data);
    let mut split = slip::Decoder::new();
    let split_frames: Vec<Vec<u8>> = reads(data).flat_map(|p| split.feed(p)).collect();
    assert_eq!(
        frames, split_frames,
        "frames depend on how the bytes were read"
    );
    assert_eq!(whole.noise(), split.noise());
    let kept: usize = frames.iter().map(Vec::len).sum();
    assert!(
        kept as u64 + whole.noise() <= data.len() as u64,
        "{kept} bytes kept and {} noise out of {} in",
        whole.noise(),
        data.len()
    );
    for frame in &frames {
        assert!(!frame.is_empty() && frame.len() <= slip::MAX_FRAME);
        let mut decoder = slip::Decoder::new();
        assert_eq!(
            &decoder.feed(&slip::encode(frame)),
            std::slice::from_ref(frame)
        );
        assert_eq!(decoder.noise(), 0);
    }
    if !data.is_empty() && data.len() <= slip::MAX_FRAME {
        let mut decoder = slip::Decoder::new();
        assert_eq!(decoder.feed(&slip::encode(data)), vec![data.to_vec()]);
    }
}

/// SLIP frames from the input handed to a fresh ROM loader (and, once a stub is
/// started, to the stub), with an erased in-memory flash. Every frame sent back
/// must be one SLIP frame; a response to the request carries its own length.
pub fn loader(data: &[u8]) {
    let mut flash = Flash::in_memory();
    let mut loader = Loader::new(Efuse::for_mac([0x18, 0xFE, 0x34, 1, 2, 3]));
    for frame in slip::Decoder::new().feed(data) {
        let Ok(effects) = loader.handle(&frame, &mut flash, 115_200) else {
            continue;
        };
        let mut first = true;
        for effect in effects {
            if let Effect::Send(wire) = effect {
                // READ_FLASH streams flash contents after its response: only the
                // first frame is known to be a response.
                check_sent(if first { &frame } else { &[] }, &wire);
                first = false;
            }
        }
    }
    if let Some(Effect::Send(wire)) = loader.close() {
        check_sent(&[], &wire);
    }
}

/// One SLIP frame; when `request` is given and the frame answers its command, a
/// length field that counts the rest of the frame.
fn check_sent(request: &[u8], wire: &[u8]) {
    let mut decoder = slip::Decoder::new();
    let frames = decoder.feed(wire);
    assert_eq!(frames.len(), 1, "one Send is one frame");
    assert_eq!(decoder.noise(), 0);
    let frame = &frames[0];
    if let ([0, op, ..], [1, answered, len_lo, len_hi, _, _, _, _, rest @ ..]) =
        (request, frame.as_slice())
    {
        if op == answered {
            assert_eq!(
                usize::from(u16::from_le_bytes([*len_lo, *len_hi])),
                rest.len(),
                "the response's length field is wrong"
            );
        }
    }
}

// --- TLS ---------------------------------------------------------------------------

fn check_hello(hello: &crate::timeline::ClientHello, len: usize) {
    assert!(hello.cipher_suites.len() <= len / 2);
    assert!(hello.versions.len() <= len / 2 + 4);
    if let Some(sni) = &hello.sni {
        assert!(sni.len() <= 3 * len);
    }
}

/// Records as the TLS front scans them, the first handshake message, and the
/// ClientHello parser on the records and on the raw input.
pub fn hello(data: &[u8]) {
    if let Ok(h) = hello::parse_client_hello(data) {
        check_hello(&h, data.len());
    }
    let mut scanner = hello::RecordScanner::default();
    let mut records = Vec::new();
    'read: for piece in reads(data) {
        scanner.push(piece);
        loop {
            match scanner.next_record() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(hello::NotTls) => break 'read,
            }
        }
    }
    let mut consumed = 0usize;
    for record in &records {
        assert!(record.payload.len() <= hello::MAX_RECORD);
        let bytes = record.encode();
        consumed += bytes.len();
        let mut again = hello::RecordScanner::default();
        again.push(&bytes);
        assert_eq!(again.next_record().ok().flatten().as_ref(), Some(record));
        let _ = record.plaintext_alert();
    }
    assert!(consumed <= data.len());
    if let Ok(Some(message)) = hello::first_handshake_message(&records) {
        assert!(message.len() <= data.len());
        if let Ok(h) = hello::parse_client_hello(&message) {
            check_hello(&h, message.len());
        }
    }
}

// --- MQTT ----------------------------------------------------------------------------

fn decode_all<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<(Packet, Vec<u8>)>, Option<codec::Malformed>) {
    let mut decoder = codec::Decoder::default();
    let mut packets = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_packet() {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(e) => return (packets, Some(e)),
            }
        }
    }
    (packets, None)
}

fn put_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
}

fn put_bytes(body: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    body.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_be_bytes());
    body.extend_from_slice(bytes);
    Some(())
}

/// The packet written back as MQTT 3.1.1 (what the decoder kept of it); `None` for
/// what it does not keep enough of, or strings that grew past 64 KB when bytes
/// that were not UTF-8 were replaced.
fn encode_packet(packet: &Packet) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let first = match packet {
        Packet::Connect {
            client_id,
            username,
            password,
            keep_alive,
            protocol_level,
        } => {
            put_bytes(&mut body, b"MQTT")?;
            body.push(*protocol_level);
            let flags = u8::from(username.is_some()) << 7 | u8::from(password.is_some()) << 6;
            body.push(flags);
            body.extend_from_slice(&keep_alive.to_be_bytes());
            put_bytes(&mut body, client_id.as_bytes())?;
            if let Some(username) = username {
                put_bytes(&mut body, username.as_bytes())?;
            }
            if let Some(password) = password {
                put_bytes(&mut body, password)?;
            }
            0x10
        }
        Packet::Connack { code } => {
            body.extend_from_slice(&[0, *code]);
            0x20
        }
        Packet::Publish {
            topic,
            payload,
            qos,
            retain,
        } => {
            put_bytes(&mut body, topic.as_bytes())?;
            if *qos > 0 {
                body.extend_from_slice(&[0, 1]);
            }
            body.extend_from_slice(payload);
            0x30 | qos << 1 | u8::from(*retain)
        }
        Packet::Subscribe { topics } => {
            body.extend_from_slice(&[0, 1]);
            for topic in topics {
                put_bytes(&mut body, topic.as_bytes())?;
                body.push(0);
            }
            0x82
        }
        Packet::Suback { codes } => {
            body.extend_from_slice(&[0, 1]);
            body.extend_from_slice(codes);
            0x90
        }
        Packet::Pingreq => 0xC0,
        Packet::Disconnect => 0xE0,
        Packet::Other => return None,
    };
    let mut out = vec![first];
    put_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

/// Whether the decoder replaced bytes that were not UTF-8 in a string it kept.
fn replaced_text(packet: &Packet) -> bool {
    let bad = |s: &str| s.contains('\u{fffd}');
    match packet {
        Packet::Connect {
            client_id,
            username,
            ..
        } => bad(client_id) || username.as_deref().is_some_and(bad),
        Packet::Publish { topic, .. } => bad(topic),
        Packet::Subscribe { topics } => topics.iter().any(|t| bad(t)),
        _ => false,
    }
}

/// The lab's MQTT decoder: packets independent of reads, raw bytes forwarded
/// exactly as received, and every recorded packet written back decoding the same.
pub fn mqtt(data: &[u8]) {
    let whole = decode_all([data]);
    let split = decode_all(reads(data));
    assert_eq!(whole, split, "packets depend on how the bytes were read");
    let (packets, _) = whole;
    let mut at = 0usize;
    for (packet, raw) in &packets {
        assert_eq!(
            data.get(at..at + raw.len()),
            Some(raw.as_slice()),
            "the raw bytes of a packet are not what came in"
        );
        at += raw.len();
        let Some(bytes) = encode_packet(packet) else {
            continue;
        };
        if bytes.len() > 1 << 20 {
            continue;
        }
        if !replaced_text(packet) {
            // Nothing was replaced: the decoder kept at most what came in (will
            // fields and protocol names are dropped, lengths may have been padded).
            assert!(
                bytes.len() <= raw.len() + 6,
                "{} bytes back from a {}-byte packet",
                bytes.len(),
                raw.len()
            );
        }
        let (again, error) = decode_all([bytes.as_slice()]);
        assert_eq!(error, None, "a packet written back does not decode");
        assert_eq!(again.len(), 1);
        assert_eq!(
            &again[0].0, packet,
            "a packet written back decodes differently"
        );
    }
}

// --- images and descriptors ----------------------------------------------------------

/// `ImageV1::parse`, the image written back, and descriptors in the input and in
/// the segments of an image.
pub fn image(data: &[u8]) {
    if let Ok(image) = ImageV1::parse(data) {
        assert!(
            image.len() <= data.len(),
            "the image is longer than its bytes"
        );
        let bytes = image.to_bytes();
        assert_eq!(bytes.len(), image.len());
        assert_eq!(
            ImageV1::parse(&bytes).ok().as_ref(),
            Some(&image),
            "an image written back parses differently"
        );
        let _ = image.checksum_ok();
        let segments: Vec<u8> = image
            .segments()
            .iter()
            .flat_map(|s| s.data().iter().copied())
            .collect();
        descriptor(&segments);
    }
    descriptor(data);
}

fn descriptor(data: &[u8]) {
    let Ok(found) = Descriptor::decode(data) else {
        return;
    };
    let bytes = found.encode();
    assert_eq!(
        Descriptor::decode(&bytes).ok().as_ref(),
        Some(&found),
        "a descriptor written back decodes differently"
    );
}

// --- PROV -------------------------------------------------------------------------------

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn check_prov(payload: &str) {
    match provision::parse(payload) {
        Ok(settings) => {
            let line = provision::line(&settings);
            let again = line.strip_prefix("PROV ").map(provision::parse);
            assert_eq!(
                again,
                Some(Ok(settings)),
                "settings written back parse differently"
            );
        }
        Err(e) => {
            // The reason goes into the firmware's log: it must never quote the input.
            let reason = e.to_string();
            let shape = reason == "bad-base64"
                || reason.strip_prefix("bad-json:").is_some_and(|r| {
                    r.split_once('@').is_some_and(|(kind, at)| {
                        kind.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                            && at.chars().all(|c| c.is_ascii_digit() || c == ':')
                    })
                });
            assert!(shape, "a PROV reason that may quote the input: {reason}");
        }
    }
}

/// The input as a PROV payload, and (so the engine mutates the JSON itself) the
/// input base64-encoded.
pub fn prov(data: &[u8]) {
    check_prov(&String::from_utf8_lossy(data));
    check_prov(&base64(data));
}

// --- serial lines and crash dumps ---------------------------------------------------

/// Lines out of the serial stream, then crash headers, banners and dumps in them.
pub fn crash(data: &[u8]) {
    let mut whole = LineSplitter::new();
    let mut lines = whole.feed(data);
    lines.extend(whole.finish());
    let mut split = LineSplitter::new();
    let mut split_lines: Vec<String> = reads(data).flat_map(|p| split.feed(p)).collect();
    split_lines.extend(split.finish());
    assert_eq!(
        lines, split_lines,
        "lines depend on how the bytes were read"
    );
    assert!(lines.len() <= data.len());
    for line in &lines {
        assert!(!line.contains(['\r', '\n']));
        // At most 4096 bytes kept, each at worst replaced by U+FFFD (3 bytes).
        assert!(line.len() <= 3 * 4096);
        let _ = crash::header(line);
        let _ = crash::banner_cause(line);
    }
    for start in 0..lines.len().min(16) {
        if let Some(found) = Crash::parse(&lines[start..]) {
            let _ = found.summary();
            let _ = found.to_string();
            assert!(found
                .code_addresses()
                .iter()
                .all(|a| crash::is_code_address(*a)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_twins_decoder() {
        for len in 0..8 {
            let data: Vec<u8> = (0..len).map(|i| i * 37 + 1).collect();
            let text = base64(&data);
            // provision::parse decodes base64 first: a JSON error means it decoded.
            assert_ne!(
                provision::parse(&text),
                Err(provision::ProvisionError::Base64),
                "{text}"
            );
        }
    }

    #[test]
    fn every_target_has_a_corpus() {
        for target in TARGETS {
            assert!(
                corpus_dir(target.name).is_dir(),
                "{} has no corpus",
                target.name
            );
        }
    }
}
