#include "log.h"

#include <stdarg.h>

#include "config.h"

// Format strings live in flash (PSTR): RAM is the scarce resource on an ESP8266.
// The two names only mark which log language a format belongs to.
#define REF(fmt) PSTR(fmt)
#define SEED(fmt) PSTR(fmt)

namespace hil {
namespace log {
namespace {

// Prints one line ending in CRLF, as the contract requires. Short lines are
// formatted on the stack; a long one (an MQTT payload, a CA-sized reason) gets a
// heap buffer of its exact size rather than being cut.
void line(PGM_P fmt, ...) {
  char small[160];
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf_P(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (static_cast<size_t>(n) < sizeof small) {
    Serial.write(reinterpret_cast<const uint8_t*>(small), n);
  } else {
    char* big = static_cast<char*>(malloc(n + 1));
    if (big == nullptr) {
      // Out of memory: the truncated line still carries the tag and the start.
      Serial.write(reinterpret_cast<const uint8_t*>(small), sizeof small - 1);
    } else {
      va_start(ap, fmt);
      vsnprintf_P(big, n + 1, fmt, ap);
      va_end(ap);
      Serial.write(reinterpret_cast<const uint8_t*>(big), n);
      free(big);
    }
  }
  Serial.write("\r\n", 2);
}

constexpr bool seed = knobs::kSeedLogs;

}  // namespace

void boot(const char* fw, const char* version, const String& reset) {
  if (seed) return line(SEED(""));
  line(REF("[boot] fw=%s version=%s reset=%s"), fw, version, reset.c_str());
}

void provReady(uint32_t windowMs) {
  if (seed) return line(SEED("Waiting for provisioning..."));
  line(REF("[prov] ready window_ms=%u"), windowMs);
}

void provOk() {
  if (seed) return line(SEED("Provisioned"));
  line(REF("[prov] ok"));
}

void provError(const String& reason) {
  if (seed) return line(SEED("Provisioning failed: %s"), reason.c_str());
  line(REF("[prov] error reason=%s"), reason.c_str());
}

void wifiConnecting(const String& ssid) {
  if (seed) return line(SEED("Connecting to %s"), ssid.c_str());
  line(REF("[wifi] connecting ssid=%s"), ssid.c_str());
}

void wifiConnected(const IPAddress& ip) {
  const String text = ip.toString();
  if (seed) {
    // The forum sketches print the address on a line of its own.
    line(SEED("WiFi connected"));
    line(SEED("IP address: "));
    return line(SEED("%s"), text.c_str());
  }
  line(REF("[wifi] connected ip=%s"), text.c_str());
}

void wifiFailed() {
  if (seed) return line(SEED("."));
  line(REF("[wifi] failed"));
}

void dnsResolved(const String& host, const IPAddress& ip) {
  if (seed) return;
  line(REF("[dns] resolved host=%s ip=%s"), host.c_str(), ip.toString().c_str());
}

void dnsFailed(const String& host) {
  if (seed) return;
  line(REF("[dns] failed host=%s"), host.c_str());
}

void ntpSynced(uint32_t epoch) {
  if (seed) return;
  line(REF("[ntp] synced epoch=%u"), epoch);
}

void ntpFailed() {
  if (seed) return;
  line(REF("[ntp] failed"));
}

void tlsConnecting(const String& host, uint16_t port, const char* mode) {
  if (seed) return;
  line(REF("[tls] connecting host=%s port=%u mode=%s"), host.c_str(), port, mode);
}

void tlsOk(const char* version, const String& suite, unsigned mfln) {
  if (seed) return;
  line(REF("[tls] ok version=%s suite=%s mfln=%u"), version, suite.c_str(), mfln);
}

void tlsError(int code, const char* text) {
  // The seed-style firmware is silent here: exactly the missing reason the forum
  // threads fight with.
  if (seed) return;
  line(REF("[tls] error code=%d text=%s"), code, text);
}

void mqttConnected(const String& clientId) {
  if (seed) return line(SEED("Attempting MQTT connection...connected"));
  line(REF("[mqtt] connected client_id=%s"), clientId.c_str());
}

void mqttFailed(int rc, uint32_t retryMs) {
  if (seed) {
    return line(SEED("Attempting MQTT connection...failed, rc=%d try again in %u seconds"), rc,
                retryMs / 1000);
  }
  line(REF("[mqtt] failed rc=%d"), rc);
}

void mqttSubscribed(const String& topic) {
  if (seed) return;
  line(REF("[mqtt] subscribed topic=%s"), topic.c_str());
}

void mqttPublished(const String& topic, size_t bytes, bool ok) {
  if (seed) {
    if (ok) line(SEED("Published"));
    return;
  }
  line(REF("[mqtt] published topic=%s bytes=%u ok=%u"), topic.c_str(), bytes, ok ? 1u : 0u);
}

void mqttMessage(const char* topic, const String& payload) {
  if (seed) return line(SEED("Message arrived [%s] %s"), topic, payload.c_str());
  line(REF("[mqtt] message topic=%s payload=%s"), topic, payload.c_str());
}

void mqttRetry(uint32_t inMs) {
  if (seed) return;
  line(REF("[mqtt] retry in_ms=%u"), inMs);
}

void heap(uint32_t freeBytes) {
  if (seed) return;
  line(REF("[heap] free=%u"), freeBytes);
}

}  // namespace log
}  // namespace hil
