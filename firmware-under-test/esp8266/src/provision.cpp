#include "provision.h"

#include <ArduinoJson.h>

#include "compiled_root.h"
#include "config.h"

namespace hil {

Settings compiledIn() {
  Settings s;
  s.wifiSsid = F("factory-ap");
  s.wifiPassword = F("factory-secret");
  s.brokerHost = knobs::kBrokerHost;
  s.brokerPort = 8883;
  s.caPem = FPSTR(compiledRootPem());
  s.topicPublish = F("devices/telemetry");
  s.topicSubscribe = F("devices/commands");
  s.publishIntervalMs = 5000;
  return s;
}

namespace {

int8_t base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict standard base64 (padding required, no whitespace, canonical trailing
// bits), decoded in place: the output is shorter than the input, so writing
// behind the read position is safe, and a PROV line of several kilobytes is
// never held twice in the ESP8266's small heap.
bool base64DecodeInPlace(String& text) {
  const size_t n = text.length();
  if (n % 4 != 0) return false;
  char* buf = text.begin();
  size_t out = 0;
  for (size_t i = 0; i < n; i += 4) {
    const bool last = i + 4 == n;
    int8_t v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = buf[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // data after padding
      v[k] = base64Value(c);
      if (v[k] < 0) return false;
    }
    // Non-zero bits under the padding are a non-canonical encoding, which the
    // twin's decoder refuses too.
    if (pad == 1 && (v[2] & 0x03) != 0) return false;
    if (pad == 2 && (v[1] & 0x0F) != 0) return false;
    const uint32_t word = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) |
                          (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    buf[out++] = char(word >> 16);
    if (pad < 2) buf[out++] = char((word >> 8) & 0xFF);
    if (pad < 1) buf[out++] = char(word & 0xFF);
  }
  text.remove(out);
  return true;
}

// Feeds ArduinoJson while counting what it consumed, so a syntax error can be
// reported as line:column like the twin's serde error.
class CountingReader {
 public:
  CountingReader(const char* data, size_t len) : data_(data), len_(len) {}
  int read() { return pos_ < len_ ? static_cast<unsigned char>(data_[pos_++]) : -1; }
  size_t readBytes(char* into, size_t n) {
    size_t k = 0;
    while (k < n && pos_ < len_) into[k++] = data_[pos_++];
    return k;
  }
  size_t position() const { return pos_; }

 private:
  const char* data_;
  size_t len_;
  size_t pos_ = 0;
};

String jsonReason(const char* kind, const char* text, size_t offset) {
  // serde counts lines and columns from 1; the column is that of the byte where
  // the error was noticed.
  size_t line = 1, column = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 0;
    } else {
      ++column;
    }
  }
  String reason(F("bad-json:"));
  reason += kind;
  reason += '@';
  reason += line;
  reason += ':';
  reason += column;
  return reason;
}

// The serde rules per field type: a required String must be a string; an
// Option<String> may also be absent or null.
bool requiredString(JsonVariantConst v, String& out) {
  if (!v.is<const char*>()) return false;
  out = v.as<const char*>();
  return true;
}

bool optionalString(JsonVariantConst v, String& out, bool* present = nullptr) {
  if (v.isNull()) {
    if (present) *present = false;
    return true;
  }
  if (!v.is<const char*>()) return false;
  out = v.as<const char*>();
  if (present) *present = true;
  return true;
}

}  // namespace

bool parseProvision(String& payload, Settings& out, String& reason) {
  payload.trim();
  if (!base64DecodeInPlace(payload)) {
    reason = F("bad-base64");
    return false;
  }
  const char* text = payload.c_str();
  const size_t len = payload.length();

  JsonDocument json;
  CountingReader reader(text, len);
  const DeserializationError err = deserializeJson(json, reader);
  if (err) {
    const bool truncated = err == DeserializationError::IncompleteInput ||
                           err == DeserializationError::EmptyInput;
    const char* kind = truncated ? "truncated"
                       : err == DeserializationError::NoMemory ? "too-large"
                                                               : "syntax";
    reason = jsonReason(kind, text, reader.position());
    return false;
  }
  // serde refuses anything but whitespace after the object; ArduinoJson stops
  // reading after the first value, so check the rest here.
  for (size_t i = reader.position(); i < len; ++i) {
    if (!isspace(static_cast<unsigned char>(text[i]))) {
      reason = jsonReason("syntax", text, i + 1);
      return false;
    }
  }

  // Read through a const view: lookups of absent members then yield unbound
  // variants instead of proxies, and nothing is ever inserted by accident.
  const JsonObjectConst doc = json.as<JsonObjectConst>();
  Settings s;
  bool ok = !doc.isNull();
  ok = ok && requiredString(doc["wifi"]["ssid"], s.wifiSsid);
  ok = ok && requiredString(doc["wifi"]["password"], s.wifiPassword);
  ok = ok && optionalString(doc["dns"], s.dns);
  ok = ok && optionalString(doc["ntp"], s.ntp);
  ok = ok && requiredString(doc["broker"]["host"], s.brokerHost);
  ok = ok && doc["broker"]["port"].is<uint16_t>();
  if (ok) s.brokerPort = doc["broker"]["port"].as<uint16_t>();
  // mqtt may be absent (serde default), but not null or another type.
  ok = ok && (doc["mqtt"].isUnbound() || doc["mqtt"].is<JsonObjectConst>());
  ok = ok && (doc["mqtt"]["client_id"].isUnbound() ||
              requiredString(doc["mqtt"]["client_id"], s.clientId));
  ok = ok && optionalString(doc["mqtt"]["username"], s.username, &s.hasUsername);
  ok = ok && optionalString(doc["mqtt"]["password"], s.password, &s.hasPassword);
  ok = ok && optionalString(doc["ca_pem"], s.caPem);
  ok = ok && optionalString(doc["issuer_pem"], s.issuerPem);
  ok = ok && optionalString(doc["fingerprint"], s.fingerprint);
  ok = ok && optionalString(doc["known_key_pem"], s.knownKeyPem);
  ok = ok && optionalString(doc["client_cert_pem"], s.clientCertPem);
  ok = ok && optionalString(doc["client_key_pem"], s.clientKeyPem);
  ok = ok && requiredString(doc["topics"]["publish"], s.topicPublish);
  ok = ok && requiredString(doc["topics"]["subscribe"], s.topicSubscribe);
  if (ok && !doc["publish_interval_ms"].isUnbound()) {
    // The twin takes a u64; a device interval beyond 49 days is clamped.
    ok = doc["publish_interval_ms"].is<uint64_t>();
    if (ok) {
      const uint64_t ms = doc["publish_interval_ms"].as<uint64_t>();
      s.publishIntervalMs = ms > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(ms);
    }
  }
  if (!ok) {
    // serde notices a missing field when the object closes: the end of input.
    reason = jsonReason("missing-or-wrong-field", text, len);
    return false;
  }
  out = s;
  return true;
}

}  // namespace hil
