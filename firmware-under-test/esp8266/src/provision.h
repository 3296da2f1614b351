// Provisioning: the one `PROV <base64 of a JSON object>` line the harness writes
// after `[prov] ready`, and the settings compiled in for when nobody does.
//
// Field names and defaults follow contract/src/provision.rs exactly (serde names):
//   wifi{ssid,password}  dns  ntp  broker{host,port}
//   mqtt{client_id,username,password}  ca_pem  issuer_pem  fingerprint
//   known_key_pem  client_cert_pem  client_key_pem  topics{publish,subscribe}
//   publish_interval_ms (default 5000)
// wifi, broker and topics are required; everything else is optional.
#pragma once

#include <Arduino.h>

namespace hil {

struct Settings {
  String wifiSsid;
  String wifiPassword;  // secret: never logged
  String dns;           // "a.b.c.d[:port]"; empty: the one DHCP gave
  String ntp;           // "host[:port]"; empty: DHCP's, else pool.ntp.org
  String brokerHost;
  uint16_t brokerPort = 8883;
  String clientId;  // empty: derived from the MAC
  // An absent user name and an empty one differ on the wire (the CONNECT flags),
  // hence the explicit presence flags.
  bool hasUsername = false;
  String username;
  bool hasPassword = false;
  String password;  // secret: never logged
  String caPem;
  String issuerPem;
  String fingerprint;  // SHA-1 of the leaf, hex, ':' or ' ' separators allowed
  String knownKeyPem;
  String clientCertPem;
  String clientKeyPem;  // secret: never logged
  String topicPublish;
  String topicSubscribe;
  uint32_t publishIntervalMs = 5000;
};

// What runs in black-box mode: the release firmware as shipped, built for its
// production broker and trusting a public root only.
Settings compiledIn();

// Decodes a PROV payload into `out`. On failure returns false and sets `reason`
// to the text after `reason=`: "bad-base64" or "bad-json:<kind>@<line>:<column>".
// The reason never quotes the input, so no secret can leak into the log.
bool parseProvision(String& payload, Settings& out, String& reason);

}  // namespace hil
