// The reference firmware of the `hil` project, for real ESP8266 boards.
//
// It does what a careful MQTT-over-TLS sketch should do -- trust anchors, a real
// clock before the handshake, connect by host name, say why a connection failed
// -- and prints every step as one `[tag] key=value` line (DESIGN.md, "Contract
// between firmware and harness"). Build flags (config.h) turn it into each of the
// catalogue's mutants. Its behavioural twin, run by the virtual board, is
// firmware-under-test/twin/src/firmware.rs: the two must stay line for line the
// same, and twin/tests/lockstep.rs checks the formats, fields and knobs.

#include <Arduino.h>
#include <ESP8266WiFi.h>
#include <PubSubClient.h>
#include <WiFiClientSecureBearSSL.h>
#include <coredecls.h>  // settimeofday_cb: SNTP tells us when the clock is set
#include <lwip/apps/sntp.h>
#include <lwip/dns.h>
#include <time.h>

#include "bearssl_names.h"
#include "config.h"
#include "log.h"
#include "provision.h"
#include "tls_session.h"

using namespace hil;

namespace {

// PubSubClient's state() values the firmware produces itself (PubSubClient.h).
constexpr int kConnectFailed = MQTT_CONNECT_FAILED;  // -2

// The core returns this instead of a BearSSL number when it could not allocate
// the TLS buffers (WiFiClientSecureBearSSL.cpp); worth its own name on a device
// with 40 KB of heap.
constexpr int kCoreOutOfMemory = -1000;

// A PROV line is at most this long: a CA, an intermediate, a client certificate
// and key in base64 fit comfortably; anything longer would exhaust the heap.
constexpr size_t kMaxProvLine = 12 * 1024;

Settings settings;

// The TLS client and everything it points at. The core keeps raw pointers to the
// trust material, so it lives as long as the client does.
BearSSL::WiFiClientSecure tls;
BearSSL::X509List anchors;
BearSSL::PublicKey knownKey;
BearSSL::X509List clientChain;
BearSSL::PrivateKey clientKey;
const char* trustMode = "trust-anchors";

PubSubClient mqtt(tls);

// The clock BearSSL validates certificates against: 1970 + uptime until
// something sets it (SNTP, or the build time for the stale-clock mutant). It is
// passed to setX509Time() explicitly before every handshake, exactly like the
// twin, so no certificate check ever depends on a clock nobody chose.
struct DeviceClock {
  bool set = false;
  uint32_t setAtMs = 0;
  uint32_t unixAtSet = 0;

  uint32_t now() const {
    return set ? unixAtSet + (millis() - setAtMs) / 1000 : millis() / 1000;
  }
  void setTo(uint32_t epoch) {
    set = true;
    setAtMs = millis();
    unixAtSet = epoch;
  }
} deviceClock;

volatile bool sntpDelivered = false;
bool sntpStarted = false;
uint32_t attempt = 0;  // failed connection attempts since the last success
uint32_t failedConnects = 0;  // failed connect() calls since boot (the fallback knob)
bool connectedBefore = false;  // an MQTT session has started since boot

// Discards whatever arrived on the serial port: after provisioning the firmware
// reads no more commands. read() returning -1 ends it, rather than available(),
// because read() is also what pulls bytes in the core's host emulation.
void drainSerial() {
  while (Serial.read() >= 0) {
  }
}

// Waits, discarding serial input.
void idle(uint32_t ms) {
  const uint32_t start = millis();
  while (millis() - start < ms) {
    drainSerial();
    delay(10);
  }
}

// ---------------------------------------------------------------- provisioning

// Reads one line (LF-terminated, CR stripped) if it arrives before `deadline`.
// Over-long lines are consumed to their end and reported, never half-parsed.
enum class LineResult : uint8_t { Line, TooLong, Timeout };

LineResult readLine(String& out, uint32_t deadline) {
  out = String();
  bool overflow = false;
  while (static_cast<int32_t>(millis() - deadline) < 0) {
    for (int c = Serial.read(); c >= 0; c = Serial.read()) {
      if (c == '\n') {
        if (overflow) return LineResult::TooLong;
        if (out.endsWith("\r")) out.remove(out.length() - 1);
        return LineResult::Line;
      }
      if (out.length() >= kMaxProvLine) {
        overflow = true;
        out = String();
      }
      if (!overflow) out += static_cast<char>(c);
    }
    delay(1);  // lets the Wi-Fi stack run while we wait
  }
  return LineResult::Timeout;
}

// The provisioning window: waits for `PROV <base64 JSON>` after `[prov] ready`.
// A refused line is reported and the window keeps running, so the harness can
// send a corrected one; when the window closes the compiled-in settings run.
Settings provisioning() {
  log::provReady(kProvisioningWindowMs);
  const uint32_t deadline = millis() + kProvisioningWindowMs;
  String line;
  for (;;) {
    const LineResult got = readLine(line, deadline);
    if (got == LineResult::Timeout) break;
    if (got == LineResult::TooLong) {
      log::provError(F("too-long"));
      continue;
    }
    line.trim();
    if (!line.startsWith("PROV ")) continue;
    String payload = line.substring(5);
    line = String();  // free it before the JSON document is built
    Settings parsed;
    String reason;
    if (parseProvision(payload, parsed, reason)) {
      log::provOk();
      return parsed;
    }
    log::provError(reason);
  }
  return compiledIn();
}

// ---------------------------------------------------------------------- Wi-Fi

void joinWifi() {
  // Provisioned credentials must not be written to flash on every boot.
  WiFi.persistent(false);
  WiFi.mode(WIFI_STA);
  for (;;) {
    log::wifiConnecting(settings.wifiSsid);
    WiFi.begin(settings.wifiSsid.c_str(), settings.wifiPassword.c_str());
    if (WiFi.waitForConnectResult(kWifiJoinTimeoutMs) == WL_CONNECTED) {
      log::wifiConnected(WiFi.localIP());
      return;
    }
    log::wifiFailed();
    WiFi.disconnect();
    idle(kWifiRetryMs);
  }
}

// A provisioned DNS server ("a.b.c.d:port") replaces the one DHCP gave, so the
// lab can answer for the broker's name. Like the twin, a value that is not an
// address with a port is ignored. lwIP always queries port 53: the port is
// accepted for the twin's sake and a real-board lab must listen on 53.
void applyDnsServer() {
  const int colon = settings.dns.lastIndexOf(':');
  if (colon <= 0) return;
  IPAddress server;
  if (!server.fromString(settings.dns.substring(0, colon))) return;
  dns_setserver(0, static_cast<const ip_addr_t*>(server));
}

// ----------------------------------------------------------------------- SNTP

// The NTP server to ask: the provisioned one, else the one DHCP offered
// (option 42), else pool.ntp.org -- the twin's order. lwIP's SNTP client always
// uses port 123, so a port in the provisioned value is dropped.
String ntpServerName() {
  if (settings.ntp.length() > 0) {
    const int colon = settings.ntp.indexOf(':');
    return colon > 0 ? settings.ntp.substring(0, colon) : settings.ntp;
  }
  const IPAddress dhcp(sntp_getserver(0));
  if (dhcp.isSet()) return dhcp.toString();
  return F("pool.ntp.org");
}

// Sets the device clock from SNTP before the first handshake. Certificates are
// only as good as the clock they are checked against; a device that cannot get
// the time says so (`[ntp] failed`) and then fails the handshake for a reason
// everyone can read.
void syncClock() {
  if (knobs::kClock != Clock::Ntp || deviceClock.set) return;
  if (!sntpStarted) {
    // configTime keeps the pointer it is given: the name must outlive it.
    static String server;
    server = ntpServerName();
    configTime(0, 0, server.c_str(), nullptr, nullptr);
    sntpStarted = true;
  }
  const uint32_t start = millis();
  while (!sntpDelivered && millis() - start < kNtpTimeoutMs) delay(10);
  if (sntpDelivered) {
    const uint32_t epoch = static_cast<uint32_t>(time(nullptr));
    deviceClock.setTo(epoch);
    log::ntpSynced(epoch);
  } else {
    log::ntpFailed();
  }
}

// ------------------------------------------------------------------------ TLS

bool decodeFingerprint(const String& text, uint8_t out[20]) {
  size_t n = 0;
  int high = -1;
  for (size_t i = 0; i < text.length(); ++i) {
    const char c = text[i];
    if (c == ':' || c == ' ') continue;
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return false;
    if (high < 0) {
      high = v;
    } else {
      if (n == 20) return false;
      out[n++] = static_cast<uint8_t>(high << 4 | v);
      high = -1;
    }
  }
  return n == 20 && high < 0;
}

// The malformed-ca mutant: a bad paste that loses one line of the base64 body,
// the same line the twin drops.
String mangle(const String& pem) {
  // Lines as Rust's str::lines() sees them: split at LF, CR stripped, no empty
  // line after a final LF.
  const int total = pem.length();
  int lines = 0;
  for (int i = 0; i < total; ++i) lines += pem[i] == '\n';
  if (total > 0 && pem[total - 1] != '\n') ++lines;

  String out;
  bool first = true;
  int start = 0;
  for (int lineNo = 0; lineNo < lines; ++lineNo) {
    int end = pem.indexOf('\n', start);
    if (end < 0) end = total;
    String line = pem.substring(start, end);
    if (line.endsWith("\r")) line.remove(line.length() - 1);
    start = end + 1;
    if (lines > 3 && lineNo == 2) continue;
    if (!first) out += '\n';
    out += line;
    first = false;
  }
  return out;
}

// Configures certificate checking once: the core keeps these settings across
// connect() calls, and the last setter wins, so exactly one is called.
void configureTls() {
  switch (knobs::kTrust) {
    case Trust::Insecure:
      tls.setInsecure();
      trustMode = "insecure";
      break;
    case Trust::SelfSigned:
      tls.allowSelfSignedCerts();
      trustMode = "self-signed";
      break;
    case Trust::Fingerprint: {
      uint8_t fp[20];
      // An unusable pin is all zeros: it matches nothing, as in the twin.
      if (!decodeFingerprint(settings.fingerprint, fp)) memset(fp, 0, sizeof fp);
      tls.setFingerprint(fp);
      trustMode = "fingerprint";
      break;
    }
    case Trust::KnownKey:
      if (knownKey.parse(settings.knownKeyPem.c_str())) {
        tls.setKnownKey(&knownKey);
        trustMode = "known-key";
      } else {
        // Nothing to pin: with no anchors either, nobody can be trusted.
        tls.setTrustAnchors(&anchors);
        trustMode = "trust-anchors";
      }
      break;
    case Trust::Anchors: {
      String pem = knobs::kAnchorIsIssuer ? settings.issuerPem : settings.caPem;
      if (knobs::kCaMalformed) pem = mangle(pem);
      if (pem.length() > 0) anchors.append(pem.c_str());
      tls.setTrustAnchors(&anchors);
      trustMode = "trust-anchors";
      break;
    }
  }

  if (settings.clientCertPem.length() > 0 && settings.clientKeyPem.length() > 0) {
    clientChain.append(settings.clientCertPem.c_str());
    if (clientChain.getCount() > 0 && clientKey.parse(settings.clientKeyPem.c_str())) {
      if (clientKey.isRSA()) {
        tls.setClientRSACert(&clientChain, &clientKey);
      } else if (clientKey.isEC()) {
        // The lab's client CA signs with RSA, as the twin assumes.
        tls.setClientECCert(&clientChain, &clientKey, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN,
                            BR_KEYTYPE_RSA);
      }
    }
  }

  // The core adds BearSSL's record overhead; BearSSL derives the
  // max_fragment_length it asks for from these sizes.
  tls.setBufferSizes(knobs::kRxBuffer, knobs::kTxBuffer);
}

// ----------------------------------------------------------------------- MQTT

String clientId() {
  if (settings.clientId.length() > 0) return settings.clientId;
  uint8_t mac[6];
  WiFi.macAddress(mac);
  char id[16];
  snprintf(id, sizeof id, "ESP8266-%02x%02x%02x", mac[3], mac[4], mac[5]);
  return String(id);
}

void onMessage(char* topic, uint8_t* payload, unsigned int length) {
  String text;
  text.reserve(length);
  for (unsigned int i = 0; i < length; ++i) text += static_cast<char>(payload[i]);
  log::mqttMessage(topic, text);
}

// One attempt: resolve, TLS handshake, MQTT CONNECT. Returns true when MQTT is
// up; otherwise `rc` is the PubSubClient state to report.
bool connectOnce(int& rc) {
  const String& host = settings.brokerHost;
  const uint16_t port = settings.brokerPort;

  IPAddress ip;
  if (WiFi.hostByName(host.c_str(), ip) != 1) {
    log::dnsFailed(host);
    rc = kConnectFailed;
    return false;
  }
  log::dnsResolved(host, ip);

  tls.setX509Time(deviceClock.now());
  log::tlsConnecting(host, port, trustMode);
  // By name: SNI is sent and the certificate's name is checked. By address (the
  // connect-by-ip mutant): neither, which is the mistake being reproduced. A
  // rejected connection is deliberately not stop()ped: the core leaves it open
  // until the next connect(), and the harness must cope with that.
  const int connected = knobs::kConnectByIp ? tls.connect(ip, port) : tls.connect(host.c_str(), port);
  if (!connected) {
    const int code = tls.getLastSSLError();
    log::tlsError(code, code == kCoreOutOfMemory ? "OUT_OF_MEMORY" : bearsslErrorName(code));
    // The fallback-insecure mutant: whatever went wrong, once N connects have
    // failed the next attempt trusts anybody. The core keeps setInsecure()
    // across connect() calls, so it sticks.
    ++failedConnects;
    if (knobs::kFallbackInsecureAfter > 0 && failedConnects >= knobs::kFallbackInsecureAfter) {
      tls.setInsecure();
      trustMode = "insecure";
    }
    rc = kConnectFailed;
    return false;
  }
  TlsSession session{};
  if (negotiated(tls, session)) {
    // A fragment length below the record maximum means MFLN was negotiated.
    log::tlsOk(tlsVersionName(session.version), tlsSuiteName(session.suite),
               session.fragment < 16384 ? session.fragment : 0);
  }

  // PubSubClient sees a connected client and goes straight to CONNECT.
  if (knobs::kConnectByIp) {
    mqtt.setServer(ip, port);
  } else {
    mqtt.setServer(host.c_str(), port);
  }
  const String id = clientId();
  const char* user = settings.hasUsername ? settings.username.c_str() : nullptr;
  const char* pass = settings.hasUsername && settings.hasPassword ? settings.password.c_str() : nullptr;
  if (!mqtt.connect(id.c_str(), user, pass)) {
    rc = mqtt.state();
    return false;
  }
  log::mqttConnected(id);
  return true;
}

// A real exception 28 (load from address 0): the core prints its own register
// and stack dump and reboots with reset reason "Exception", which is what the
// twin imitates. The address is read from a volatile so the compiler cannot see
// the null pointer and replace the load with a trap instruction.
volatile uintptr_t crashAddress = 0;

[[noreturn]] void crash() {
  const uint32_t value = *reinterpret_cast<volatile uint32_t*>(crashAddress);
  (void)value;
  for (;;) delay(1000);
}

// ESP.restart(): the core prints nothing, the chip restarts with reset reason
// "Software/System restart" and the ROM's lines come at 115200.
[[noreturn]] void restartNow() {
  ESP.restart();
  for (;;) delay(1000);
}

// A spin with interrupts off: the software watchdog's timer cannot fire, so
// nothing is printed until the hardware watchdog resets the chip (~8.4 s,
// esp8266/Arduino#2942): `rst cause:4`, `wdt reset`, reason "Hardware Watchdog".
[[noreturn]] void hangWithInterruptsOff() {
  noInterrupts();
  for (;;) {
  }
}

bool publishTelemetry(uint32_t sequence) {
  char payload[96];
  const int len = snprintf(payload, sizeof payload, "{\"seq\":%u,\"uptime_ms\":%u,\"heap\":%u}",
                           static_cast<unsigned>(sequence), static_cast<unsigned>(millis()),
                           static_cast<unsigned>(ESP.getFreeHeap()));
  const bool ok = mqtt.publish(settings.topicPublish.c_str(), reinterpret_cast<const uint8_t*>(payload),
                               static_cast<unsigned>(len), false);
  // A failed write ends the session (the caller sees the state); a payload too
  // big for PubSubClient's buffer is reported with ok=0 and the session goes on.
  if (!ok && !mqtt.connected()) return false;
  log::mqttPublished(settings.topicPublish, static_cast<size_t>(len), ok);
  return true;
}

// The connected loop: subscribe, publish, answer, keep alive (PubSubClient's
// loop() does the pings). Returns the state when the connection ends.
int session() {
  // A clean session's subscriptions end with its connection; the no-resubscribe
  // mutant subscribes on its first connection only and hears no command after a
  // reconnect.
  const bool subscribe = !knobs::kSubscribeFirstConnectOnly || !connectedBefore;
  connectedBefore = true;
  if (subscribe && mqtt.subscribe(settings.topicSubscribe.c_str())) {
    log::mqttSubscribed(settings.topicSubscribe);
  } else if (!mqtt.connected()) {
    return mqtt.state();
  }
  log::heap(ESP.getFreeHeap());
  if (knobs::kCrashAfterConnect) crash();
  if (knobs::kCrashRestartAfterConnect) restartNow();
  if (knobs::kCrashWdtAfterConnect) hangWithInterruptsOff();

  const uint32_t period = settings.publishIntervalMs > 0 ? settings.publishIntervalMs : 1;
  uint32_t nextPublish = millis() + period;
  uint32_t nextHeap = millis() + kHeapPeriodMs;
  uint32_t sequence = 0;
  for (;;) {
    if (!mqtt.loop()) return mqtt.state();
    const uint32_t now = millis();
    // The publish-flood mutant publishes on every turn of the loop, as the forum
    // sketch does; the reference waits for its interval.
    if (knobs::kPublishEveryLoop || static_cast<int32_t>(now - nextPublish) >= 0) {
      nextPublish += period;
      if (!publishTelemetry(++sequence)) return mqtt.state();
    }
    if (static_cast<int32_t>(now - nextHeap) >= 0) {
      nextHeap += kHeapPeriodMs;
      log::heap(ESP.getFreeHeap());
    }
    drainSerial();
    yield();
  }
}

// 1 s, doubling to 30 s; the no-backoff mutant retries at once, forever; a
// fixed pause when the build sets one.
uint32_t retryDelay(uint32_t failures) {
  if (knobs::kReconnectImmediate) return 0;
  if (knobs::kReconnectFixedMs > 0) return knobs::kReconnectFixedMs;
  const uint32_t shift = failures < 5 ? failures : 5;
  const uint32_t ms = kBackoffFirstMs << shift;
  return ms < kBackoffMaxMs ? ms : kBackoffMaxMs;
}

// The core's reset reason with spaces made dashes ("External System" ->
// "External-System"), because a `key=value` line ends a value at a space.
String resetReason() {
  String reason = ESP.getResetReason();
  reason.replace(' ', '-');
  return reason;
}

}  // namespace

void setup() {
  // A PROV line of several kilobytes arrives at full speed while setup() runs.
  Serial.setRxBufferSize(1024);
  Serial.begin(115200);
  // The ROM's banner went out at 74880 baud and reads as garbage at 115200 with no
  // line end: start on a fresh line so the boot line is a line of its own.
  Serial.println();
  log::boot(knobs::kName, knobs::kVersion, resetReason());

  settings = provisioning();
  joinWifi();
  if (knobs::kClock == Clock::BuildTime) deviceClock.setTo(knobs::kBuildTime);
  applyDnsServer();
  settimeofday_cb([](bool fromSntp) {
    if (fromSntp) sntpDelivered = true;
  });

  configureTls();
  mqtt.setBufferSize(knobs::kMqttBuffer);
  mqtt.setCallback(onMessage);
}

void loop() {
  syncClock();
  int rc = kConnectFailed;
  if (connectOnce(rc)) {
    attempt = 0;
    rc = session();
  }
  const uint32_t delayMs = retryDelay(attempt);
  ++attempt;
  log::mqttFailed(rc, delayMs);
  log::mqttRetry(delayMs);
  if (delayMs == 0) {
    yield();
  } else {
    idle(delayMs);
  }
}
