@tls @mqtt
Feature: Broker policies the device meets in the field
  Brokers differ: some insist on SNI, client certificates or one TLS version,
  some ignore the max fragment length extension, some misbehave mid-handshake.

  Background:
    Given the board under test
    And the broker presents the "valid" certificate

  Scenario: a broker that requires SNI gets it
    Given the broker requires SNI
    When the board boots
    Then the device sent SNI "broker.hil.test"
    And the device connects to the broker within 20 s

  Scenario: a broker that requires a client certificate gets one
    Given the broker requires a client certificate
    When the board boots
    Then the TLS handshake succeeds within 20 s
    And the device connects to the broker within 20 s

  Scenario: a TLS 1.3-only broker is out of the ESP8266's reach
    Given the broker accepts only TLS 1.3
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the TLS handshake does not complete
    And the device never completes an MQTT connection

  Scenario: a TLS 1.0-only broker still talks to BearSSL
    Given the broker accepts only TLS 1.0
    When the board boots
    Then the TLS handshake succeeds within 20 s

  Scenario: a broker that ignores max_fragment_length sends full-size records
    Given the broker presents the "large-chain" certificate
    And the broker ignores the max fragment length extension
    When the board boots
    Then the TLS handshake succeeds within 20 s
    And the device connects to the broker within 20 s

  Scenario: a 4 KB command from a broker that ignores max_fragment_length
    Given the broker ignores the max fragment length extension
    When the board boots
    Then the device subscribes to "hil/commands" within 20 s
    When the broker publishes a 4096-byte message to "hil/commands"
    Then the device opens at most 1 connection per 2 s
    And the serial output never contains "[tls] error"

  Scenario: a broker that stalls after the ServerHello
    Given the broker stalls after the ServerHello
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the TLS handshake does not complete
    And the device reports MQTT state -2 within 20 s
    And the device never completes an MQTT connection

  Scenario: a broker that closes the connection mid-handshake
    Given the broker closes the connection during the handshake
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the TLS handshake does not complete
    And the device reports MQTT state -2

  Scenario: wrong MQTT credentials are refused with CONNACK 4
    Given the broker requires username "hil" and password "s3cret"
    And the device is provisioned with username "hil" and password "guess123"
    When the board boots
    Then the TLS handshake succeeds within 20 s
    And the device sends an MQTT CONNECT within 20 s
    And the device reports MQTT state 4
    And the device never completes an MQTT connection

  Scenario: the right MQTT credentials are accepted
    Given the broker requires username "hil" and password "s3cret"
    When the board boots
    Then the device connects to the broker within 20 s

  Scenario: a broker that never answers CONNECT
    Given the broker does not answer CONNECT
    When the board boots
    Then the device sends an MQTT CONNECT within 20 s
    And the device reports MQTT state -4 within 30 s
    And the device never completes an MQTT connection

  Scenario: the broker's name does not resolve
    Given the DNS server does not resolve "broker.hil.test"
    When the board boots
    Then the device looks up "broker.hil.test" within 10 s
    And the device reports MQTT state -2
    And the TLS handshake does not complete
