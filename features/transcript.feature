@snapshot
Feature: The boot transcript stays the same release after release
  A normalised transcript (times, addresses, keys, fingerprints and client ids
  redacted) is compared with the reviewed snapshot.

  Scenario: the boot and first connection transcript
    Given the board under test
    And the broker presents the "valid" certificate
    When the board boots
    Then the device publishes to "hil/telemetry" within 20 s
    And the transcript matches the snapshot
