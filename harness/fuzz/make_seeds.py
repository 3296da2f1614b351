#!/usr/bin/env python3
"""Writes the starting inputs of every fuzz target into a directory.

Usage: make_seeds.py OUT_DIR   (writes OUT_DIR/<target>/seed-*)

The seeds are well-formed inputs built from the protocol descriptions (and the
repository's own features, profiles and images), so the engine starts past the
framing and checksums. `ci/fuzz` starts a campaign from the committed corpus
plus these; the corpus kept in the repository is what the campaigns minimised.
"""
import os
import ssl
import struct
import sys
import zlib
import base64
import json

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
out_root = sys.argv[1]


def write(target, name, data):
    d = os.path.join(out_root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# --- feature: tag expression line, then a feature file -------------------------
for i, (tags, feature) in enumerate([
    ("@tls and not @slow", "features/tls_certificates.feature"),
    ("(@mqtt or @clock) and not (@wip)", "features/mqtt.feature"),
    ("not not @a", "features/clock.feature"),
    ("@x", "features/transcript.feature"),
    ("@flash or @boot", "features/flash_boot.feature"),
]):
    write("feature", f"{i}", tags.encode() + b"\n" + read(feature))
write("feature", "steps", "@a\nFeature: f\n  Scenario: s\n    Given the board under test\n"
      "    When the board boots\n    Then the device connects to the broker within 20 s\n")

# --- logprofile: profile, NUL, serial lines --------------------------------------
transcript = read("features/snapshots/transcript__the_boot_and_first_connection_transcript.snap")
transcript = transcript.split(b"---\n", 2)[-1]
for name in ("reference", "seed-style"):
    profile = read(f"fixtures/log-profiles/{name}.toml")
    write("logprofile", name, profile + b"\0" + transcript)
write("logprofile", "lines", transcript)

# --- telnet: RFC 2217 as pyserial and the board speak it ---------------------------
IAC, SB, SE, WILL, WONT, DO, DONT = 255, 250, 240, 251, 252, 253, 254
def sub(code, value):
    body = bytes([44, code]) + value
    return bytes([IAC, SB]) + body.replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])
write("telnet", "negotiate", bytes([IAC, WILL, 44, IAC, DO, 44, IAC, WILL, 0, IAC, DO, 0,
                                    IAC, DO, 3, IAC, WILL, 3, IAC, DO, 1, IAC, DONT, 1]))
write("telnet", "port", sub(1, struct.pack(">I", 115200)) + sub(2, b"\x08") + sub(3, b"\x01")
      + sub(4, b"\x01") + sub(5, b"\x08") + sub(5, b"\x0b") + sub(12, b"\x03") + sub(0, b"")
      + sub(101, struct.pack(">I", 460800)))
write("telnet", "data", b"hello\xff\xffworld\r\n" + bytes([IAC, 241, IAC, 249]) + b"\x00\x01")

# --- slip and loader ------------------------------------------------------------------
def slip(payload):
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"

def req(op, data, chk=0):
    return slip(struct.pack("<BBHI", 0, op, len(data), chk) + data)

def checksum(data):
    c = 0xEF
    for b in data:
        c ^= b
    return c

def block(op, seq, payload):
    return req(op, struct.pack("<IIII", len(payload), seq, 0, 0) + payload, checksum(payload))

sync = req(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32)
write("slip", "sync", b"noise" + sync + b"\xc0\xc0" + slip(b"\xc0\xdb\x00"))
write("slip", "broken-escape", b"\xc0ab\xdb\x01\xc0\xdb\xc0xyz\xc0")

rom = sync + req(0x0A, struct.pack("<I", 0x40001000)) + req(0x0A, struct.pack("<I", 0x3FF00050))
rom += req(0x09, struct.pack("<IIII", 0x60000200, 1 << 18, 0xFFFFFFFF, 0))
write("loader", "rom-probe", rom)
data = bytes(range(256)) * 4
flash = req(0x02, struct.pack("<IIII", len(data), 1, len(data), 0x1000))
flash += block(0x03, 0, data) + req(0x04, struct.pack("<I", 1))
write("loader", "rom-flash", sync + flash)
stub_text = b"\x00" * 64
stub = req(0x05, struct.pack("<IIII", len(stub_text), 1, len(stub_text), 0x40100000))
stub += block(0x07, 0, stub_text) + req(0x06, struct.pack("<II", 0, 0x40100000))
write("loader", "stub-upload", sync + stub)
compressed = zlib.compress(data)
stub_ops = req(0x0B, struct.pack("<IIIIII", 0, 4 * 1024 * 1024, 0x10000, 4096, 256, 0xFFFF))
stub_ops += req(0x0D, struct.pack("<II", 0, 0)) + req(0x0F, struct.pack("<II", 460800, 115200))
stub_ops += req(0x10, struct.pack("<IIII", len(data), 1, 0x4000, 0x2000))
stub_ops += block(0x11, 0, compressed) + req(0x12, struct.pack("<I", 1))
stub_ops += req(0x13, struct.pack("<IIII", 0x2000, len(data), 0, 0))
stub_ops += req(0xD1, struct.pack("<II", 0x3000, 0x1000))
stub_ops += req(0xD2, struct.pack("<IIII", 0x2000, 64, 64, 1)) + slip(struct.pack("<I", 64))
write("loader", "stub-ops", sync + stub + stub_ops)
write("loader", "stub-erase-run", sync + stub + req(0xD0, b"") + req(0xD3, b""))

# --- hello: ClientHellos from Python's TLS stack, in records ------------------------------
for name, version in (("tls12", ssl.TLSVersion.TLSv1_2), ("tls13", ssl.TLSVersion.TLSv1_3)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname="broker.hil.test")
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    record = outgoing.read()
    write("hello", name, record)
    # The same message split over two records, then a bare handshake message.
    message = record[5:]
    split = len(message) // 2
    two = (b"\x16\x03\x01" + struct.pack(">H", split) + message[:split]
           + b"\x16\x03\x01" + struct.pack(">H", len(message) - split) + message[split:])
    write("hello", name + "-split", two)
    write("hello", name + "-message", message)
write("hello", "alert", b"\x15\x03\x03\x00\x02\x02\x28")

# --- mqtt: MQTT 3.1.1 packets -----------------------------------------------------------------
def rl(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | 0x80 if n else b])
        if not n:
            return out

def pkt(first, body):
    return bytes([first]) + rl(len(body)) + body

def s(text):
    return struct.pack(">H", len(text)) + text

connect = pkt(0x10, s(b"MQTT") + b"\x04\xc6\x00\x3c" + s(b"hil-device") + s(b"will/t") + s(b"bye")
              + s(b"user") + s(b"pass"))
publish = pkt(0x32, s(b"hil/telemetry") + b"\x00\x07" + b'{"t":21.5}')
subscribe = pkt(0x82, b"\x00\x01" + s(b"hil/commands") + b"\x01" + s(b"a/#") + b"\x00")
others = pkt(0x20, b"\x00\x00") + pkt(0x90, b"\x00\x01\x01\x80") + pkt(0xC0, b"") + pkt(0xE0, b"")
write("mqtt", "session", connect + subscribe + publish + others)
write("mqtt", "big-publish", pkt(0x31, s(b"t") + b"x" * 300))
write("mqtt", "puback", pkt(0x40, b"\x00\x07") + pkt(0xD0, b""))

# --- image: the repository's images, and small ones with a descriptor ---------------------------
for name in ("reference", "corrupt"):
    write("image", name, read(f"fixtures/images/{name}.bin"))

def image(entry, segments):
    out = struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x40, entry)
    c = 0xEF
    for addr, data in segments:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            c ^= b
    out += b"\x00" * (15 - len(out) % 16)
    return out + bytes([c])

text = b"variant=reference\nname=hil-reference\nversion=1.0.0\ntrust=anchors\nrx_buffer=512\n"
descriptor = b"HILTWIN1" + struct.pack("<H", len(text)) + text
write("image", "descriptor", image(0x40100004, [(0x40100000, b"\x00" * 8), (0x3FFE8000, descriptor)]))
write("image", "bare-descriptor", descriptor)

# --- prov: PROV payloads --------------------------------------------------------------------------
settings = {
    "wifi": {"ssid": "hil-lab", "password": "factory-secret"},
    "dns": "10.0.0.1", "ntp": "10.0.0.1",
    "broker": {"host": "broker.hil.test", "port": 8883},
    "mqtt": {"client_id": "hil-device", "username": "u", "password": "p"},
    "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "fingerprint": "aa:bb",
    "topics": {"publish": "hil/telemetry", "subscribe": "hil/commands"},
    "publish_interval_ms": 1000,
}
raw = json.dumps(settings).encode()
write("prov", "json", raw)
write("prov", "base64", base64.b64encode(raw))
minimal = {k: settings[k] for k in ("wifi", "broker", "topics")}
write("prov", "minimal", json.dumps(minimal).encode())

# --- crash: serial output with dumps ----------------------------------------------------------------
dump = (b"\r\nException (29):\r\nepc1=0x4020217a epc2=0x00000000 epc3=0x00000000 "
        b"excvaddr=0x00000000 depc=0x00000000\r\n\r\n>>>stack>>>\r\n\r\nctx: cont\r\n"
        b"sp: 3ffffe00 end: 3fffffd0 offset: 0190\r\n"
        b"3fffff90:  3fffdad0 00000000 3ffee7c8 40202190  \r\n"
        b"3fffffb0:  feefeffe feefeffe 3ffe85e0 40100d19  \r\n<<<stack<<<\r\n\r\n"
        b" ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n")
write("crash", "exception", transcript + dump)
write("crash", "others", b"Soft WDT reset\n\n>>>stack>>>\nctx: sys\n<<<stack<<<\n"
      b"Panic core_esp8266_main.cpp:137 __yield\nwdt reset\nFatal exception 3(LoadStoreErrorCause):\n"
      b"epc1=0x40100000 excvaddr=0x3ffe0000\n\xff\xfe\r\r\n")
