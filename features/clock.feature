@clock
Feature: Certificates are judged with the right time
  A device without a clock believes it is 1970 and every certificate is "not yet
  valid". The lab owns the device's time through NTP.

  Background:
    Given the board under test
    And the broker presents the "valid" certificate

  Scenario: with the correct time the device connects
    When the board boots
    Then the device asked for the time within 10 s
    And the device connects to the broker within 20 s

  Scenario: a small skew stays within the certificate's window
    Given the NTP server reports a time skewed by -2 days
    When the board boots
    Then the device connects to the broker within 20 s

  Scenario Outline: a clock <skew> off makes every certificate invalid
    Given the NTP server reports a time skewed by <skew>
    When the board boots
    Then the device asked for the time within 10 s
    And the device reports a TLS failure with code 54
    And the device never completes an MQTT connection

    Examples:
      | skew      |
      | -3 years  |
      | +10 years |

  Scenario: a fixed timestamp from NTP is what the device believes
    Given the NTP server reports the time "2035-01-01T00:00:00Z"
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the device reports a TLS failure with code 54
    And the device never completes an MQTT connection

  Scenario: without an NTP answer the device must not connect
    Given the NTP server does not answer
    When the board boots
    Then the device asked for the time within 10 s
    And the device reports a TLS failure with code 54
    And the device never completes an MQTT connection
