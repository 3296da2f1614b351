@blackbox
Feature: A release binary, unmodified, refuses every impostor
  The board is not provisioned: it runs with its compiled-in settings and its
  production CA. The lab takes over the production broker's name through DNS and
  presents each impostor certificate. None may be accepted.

  Background:
    Given the board under test
    And the board is not provisioned
    And the DNS server resolves "mqtt.example.com" to the lab

  Scenario Outline: the impostor presenting "<profile>" is refused
    Given the broker presents the "<profile>" certificate
    When the board boots
    Then the device looks up "mqtt.example.com" within 10 s
    And the device sent SNI "mqtt.example.com"
    And the TLS handshake does not complete
    And the device never completes an MQTT connection

    Examples:
      | profile        |
      | valid          |
      | wrong-san      |
      | expired        |
      | untrusted-root |
      | self-signed    |
