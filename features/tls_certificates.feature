@tls
Feature: The device trusts exactly the brokers it should
  The broker's certificate decides whether a connection is safe. The reference
  firmware anchors on "HIL Root", checks names and dates with a clock from NTP,
  and must refuse every impostor with BearSSL's reason, not a bare rc=-2.

  Background:
    Given the board under test

  Scenario Outline: the device connects when the broker presents "<profile>"
    Given the broker presents the "<profile>" certificate
    When the board boots
    Then the TLS handshake succeeds within 20 s
    And the device connects to the broker within 20 s

    Examples:
      | profile          |
      | valid            |
      | renewed-leaf     |
      | new-intermediate |
      | full-chain       |
      | ecdsa            |
      | large-chain      |
      | cn-only          |
      | clientauth-eku   |

  Scenario Outline: the device refuses a broker that presents "<profile>"
    Given the broker presents the "<profile>" certificate
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the device reports a TLS failure with code <code>
    And the TLS handshake does not complete
    And the device never completes an MQTT connection

    Examples:
      | profile              | code |
      | wrong-san            | 56   |
      | wildcard-mismatch    | 56   |
      | expired              | 54   |
      | not-yet-valid        | 54   |
      | expired-intermediate | 54   |
      | untrusted-root       | 62   |
      | self-signed          | 62   |
      | missing-intermediate | 62   |
      | reversed-chain       | 56   |
      | intermediate-not-ca  | 58   |
      | critical-extension   | 57   |
      | bad-signature        | 52   |
      | md5-signature        | 49   |

  Scenario: the device names the broker it expects
    Given the broker presents the "valid" certificate
    When the board boots
    Then the device sent SNI "broker.hil.test"
    And the device offered a max fragment length of 512 bytes
