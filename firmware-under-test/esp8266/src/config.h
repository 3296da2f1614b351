// Compile-time knobs of the reference firmware.
//
// Each knob of the twin's image descriptor (firmware-under-test/twin/src/
// descriptor.rs) has exactly one build flag here, so every firmware variant of
// the catalogue -- and any combination of them -- is a plain `-D` in
// platformio.ini. Enum knobs get one flag per non-default value; numeric and text
// knobs take their value from the flag. The defaults below are the reference
// firmware's and must equal `Knobs::default()` in the twin (the lockstep test in
// twin/tests/lockstep.rs compares them).
#pragma once

#include <stddef.h>
#include <stdint.h>

// Turns a bare token sequence from `-DNAME=hil-no-ntp` into a string literal.
// PlatformIO passes quotes inside build_flags inconsistently across shells, so
// text knobs are given unquoted and stringified here.
#define HIL_STRINGIFY_RAW(x) #x
#define HIL_STRINGIFY(x) HIL_STRINGIFY_RAW(x)

// --- name, version: what the boot line reports --------------------------------
#ifndef HIL_FW_NAME
#define HIL_FW_NAME hil-reference
#endif
#ifndef HIL_FW_VERSION
#define HIL_FW_VERSION 1.0.0
#endif

// --- trust: how the broker's certificate is checked (default: anchors) --------
// The twin's descriptor holds one trust mode, so two of these at once is a
// mistake in the build flags, not a firmware.
#if (defined(HIL_TRUST_INSECURE) + defined(HIL_TRUST_FINGERPRINT) + \
     defined(HIL_TRUST_KNOWN_KEY) + defined(HIL_TRUST_SELF_SIGNED)) > 1
#error "set at most one of HIL_TRUST_INSECURE, HIL_TRUST_FINGERPRINT, HIL_TRUST_KNOWN_KEY, HIL_TRUST_SELF_SIGNED"
#endif

// --- fallback: what a failed TLS connection changes (default: nothing) --------
// HIL_FALLBACK_INSECURE: setInsecure() after the first failed connect(), for
// good -- the forum "fix" for an error nobody read.
// HIL_FALLBACK_INSECURE_AFTER=<N>: the same after N failed connects (N >= 1);
// descriptor `fallback=insecure-after:<N>`.
#if defined(HIL_FALLBACK_INSECURE) && defined(HIL_FALLBACK_INSECURE_AFTER)
#error "set at most one of HIL_FALLBACK_INSECURE, HIL_FALLBACK_INSECURE_AFTER"
#endif

// --- reconnect: how a failed MQTT connection is retried (default: backoff) ----
// HIL_RECONNECT_IMMEDIATE: at once, forever. HIL_RECONNECT_FIXED_MS=<ms>: the
// same pause every time, the seed firmware's "try again in 5 seconds";
// descriptor `reconnect=fixed:<duration>`.
#if defined(HIL_RECONNECT_IMMEDIATE) && defined(HIL_RECONNECT_FIXED_MS)
#error "set at most one of HIL_RECONNECT_IMMEDIATE, HIL_RECONNECT_FIXED_MS"
#endif

// --- crash: what goes wrong after connecting (default: nothing) ---------------
// HIL_CRASH_AFTER_CONNECT: a null load, exception 28 and the core's dump.
// HIL_CRASH_RESTART_AFTER_CONNECT: ESP.restart(), without a word.
// HIL_CRASH_WDT_AFTER_CONNECT: a spin with interrupts off until the hardware
// watchdog resets the chip (`rst cause:4`, `wdt reset`).
#if (defined(HIL_CRASH_AFTER_CONNECT) + defined(HIL_CRASH_RESTART_AFTER_CONNECT) + \
     defined(HIL_CRASH_WDT_AFTER_CONNECT)) > 1
#error "set at most one of HIL_CRASH_AFTER_CONNECT, HIL_CRASH_RESTART_AFTER_CONNECT, HIL_CRASH_WDT_AFTER_CONNECT"
#endif

// --- clock: where the X.509 validation time comes from (default: SNTP) --------
#if defined(HIL_CLOCK_UPTIME) && defined(HIL_CLOCK_BUILD_TIME)
#error "set at most one of HIL_CLOCK_UPTIME, HIL_CLOCK_BUILD_TIME"
#endif
// Unix time used by HIL_CLOCK_BUILD_TIME: 2024-01-01T00:00:00Z, long before any
// lab clock, so a stale clock is always caught.
#ifndef HIL_BUILD_TIME
#define HIL_BUILD_TIME 1704067200
#endif

// --- buffers -------------------------------------------------------------------
// setBufferSizes() arguments: record data bytes. The core adds BearSSL's
// overhead (325 in, 85 out) and clamps to 512..16384.
#ifndef HIL_RX_BUFFER
#define HIL_RX_BUFFER 16384
#endif
#ifndef HIL_TX_BUFFER
#define HIL_TX_BUFFER 512
#endif
// PubSubClient's packet buffer (setBufferSize), bytes.
#ifndef HIL_MQTT_BUFFER
#define HIL_MQTT_BUFFER 256
#endif

// --- broker_host, root_der: what the compiled-in settings dial and trust ------
// A test build of a firmware that is never provisioned (it cannot read the
// harness's PROV line) dials a name the lab answers for and trusts the lab's
// root, and stays a release build in every other respect.
//
// HIL_BROKER_HOST: the broker's name, as a C string literal
// ('-DHIL_BROKER_HOST="mqtt.team.test"'). Unlike the name and version above it
// is quoted: a host name's labels could be macros (`esp8266`, `linux`), which
// stringification would expand.
#ifndef HIL_BROKER_HOST
#define HIL_BROKER_HOST "mqtt.example.com"
#endif
// HIL_LAB_ROOT_HEADER: the header `hil pki export` writes, as a quoted header
// name ('-DHIL_LAB_ROOT_HEADER="hil_lab_root.h"' with -I its directory). Its
// HIL_LAB_ROOT_PEM (export with the default --symbol) replaces the production
// root in the compiled-in settings (read in compiled_root.h). Without it: the
// production root.

#if HIL_RX_BUFFER < 512 || HIL_RX_BUFFER > 16384 || HIL_TX_BUFFER < 512 || HIL_TX_BUFFER > 16384
#error "HIL_RX_BUFFER and HIL_TX_BUFFER take 512 to 16384 bytes (what the core accepts)"
#endif
#if HIL_MQTT_BUFFER < 16 || HIL_MQTT_BUFFER > 65535
#error "HIL_MQTT_BUFFER takes 16 to 65535 bytes"
#endif

namespace hil {

enum class Trust : uint8_t { Anchors, Insecure, Fingerprint, KnownKey, SelfSigned };
enum class Clock : uint8_t { Ntp, Uptime, BuildTime };

// The knob values as typed constants, so the code below reads as C++ and not as a
// maze of #ifdefs; the compiler folds the unused branches away.
namespace knobs {

constexpr const char* kName = HIL_STRINGIFY(HIL_FW_NAME);
constexpr const char* kVersion = HIL_STRINGIFY(HIL_FW_VERSION);

#if defined(HIL_TRUST_INSECURE)
constexpr Trust kTrust = Trust::Insecure;
#elif defined(HIL_TRUST_FINGERPRINT)
constexpr Trust kTrust = Trust::Fingerprint;
#elif defined(HIL_TRUST_KNOWN_KEY)
constexpr Trust kTrust = Trust::KnownKey;
#elif defined(HIL_TRUST_SELF_SIGNED)
constexpr Trust kTrust = Trust::SelfSigned;
#else
constexpr Trust kTrust = Trust::Anchors;
#endif

#if defined(HIL_ANCHOR_ISSUER)
constexpr bool kAnchorIsIssuer = true;
#else
constexpr bool kAnchorIsIssuer = false;
#endif

#if defined(HIL_CA_MALFORMED)
constexpr bool kCaMalformed = true;
#else
constexpr bool kCaMalformed = false;
#endif

// setInsecure() after this many failed connects; 0: never.
#if defined(HIL_FALLBACK_INSECURE_AFTER)
constexpr uint32_t kFallbackInsecureAfter = HIL_FALLBACK_INSECURE_AFTER;
static_assert(kFallbackInsecureAfter >= 1, "HIL_FALLBACK_INSECURE_AFTER takes N >= 1");
#elif defined(HIL_FALLBACK_INSECURE)
constexpr uint32_t kFallbackInsecureAfter = 1;
#else
constexpr uint32_t kFallbackInsecureAfter = 0;
#endif

#if defined(HIL_CLOCK_UPTIME)
constexpr Clock kClock = Clock::Uptime;
#elif defined(HIL_CLOCK_BUILD_TIME)
constexpr Clock kClock = Clock::BuildTime;
#else
constexpr Clock kClock = Clock::Ntp;
#endif
constexpr uint32_t kBuildTime = HIL_BUILD_TIME;

#if defined(HIL_CONNECT_BY_IP)
constexpr bool kConnectByIp = true;
#else
constexpr bool kConnectByIp = false;
#endif

constexpr const char* kBrokerHost = HIL_BROKER_HOST;

constexpr int kRxBuffer = HIL_RX_BUFFER;
constexpr int kTxBuffer = HIL_TX_BUFFER;
constexpr uint16_t kMqttBuffer = HIL_MQTT_BUFFER;

#if defined(HIL_LOG_SEED)
constexpr bool kSeedLogs = true;
#else
constexpr bool kSeedLogs = false;
#endif

#if defined(HIL_PUBLISH_EVERY_LOOP)
constexpr bool kPublishEveryLoop = true;
#else
constexpr bool kPublishEveryLoop = false;
#endif

// HIL_SUBSCRIBE_FIRST_CONNECT: subscribe after the first MQTT connection only
// (default: after every one, since a clean session's subscriptions end with it).
#if defined(HIL_SUBSCRIBE_FIRST_CONNECT)
constexpr bool kSubscribeFirstConnectOnly = true;
#else
constexpr bool kSubscribeFirstConnectOnly = false;
#endif

#if defined(HIL_RECONNECT_IMMEDIATE)
constexpr bool kReconnectImmediate = true;
#else
constexpr bool kReconnectImmediate = false;
#endif

// A fixed pause between attempts, milliseconds; 0: not fixed (backoff).
#if defined(HIL_RECONNECT_FIXED_MS)
constexpr uint32_t kReconnectFixedMs = HIL_RECONNECT_FIXED_MS;
static_assert(kReconnectFixedMs >= 1 && kReconnectFixedMs <= 86400000,
              "HIL_RECONNECT_FIXED_MS takes 1 ms to 24 h");
#else
constexpr uint32_t kReconnectFixedMs = 0;
#endif

#if defined(HIL_CRASH_AFTER_CONNECT)
constexpr bool kCrashAfterConnect = true;
#else
constexpr bool kCrashAfterConnect = false;
#endif

#if defined(HIL_CRASH_RESTART_AFTER_CONNECT)
constexpr bool kCrashRestartAfterConnect = true;
#else
constexpr bool kCrashRestartAfterConnect = false;
#endif

#if defined(HIL_CRASH_WDT_AFTER_CONNECT)
constexpr bool kCrashWdtAfterConnect = true;
#else
constexpr bool kCrashWdtAfterConnect = false;
#endif

}  // namespace knobs

// Timing shared with the twin (firmware.rs): the harness's expectations are
// written against these numbers.
constexpr uint32_t kProvisioningWindowMs = 1500;
constexpr uint32_t kNtpTimeoutMs = 2000;
constexpr uint32_t kWifiRetryMs = 2000;
constexpr uint32_t kWifiJoinTimeoutMs = 15000;
constexpr uint32_t kHeapPeriodMs = 30000;
constexpr uint32_t kBackoffFirstMs = 1000;
constexpr uint32_t kBackoffMaxMs = 30000;
// Not used by this sketch: the core (3.1.x) sets WiFiClientSecure's timeout to
// this on every connect(), and one blocking run of the TLS engine -- the
// handshake, one write -- gives up after it, so a broker that stalls mid-
// handshake ends in `[tls] error code=0` and a retry. Recorded here so the
// twin's TLS_TIMEOUT_MS is checked against the device's value.
constexpr uint32_t kTlsTimeoutMs = 15000;

}  // namespace hil
