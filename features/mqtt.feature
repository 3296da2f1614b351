@mqtt
Feature: MQTT behaviour once connected
  Publishing, subscribing, commands from the broker, and manners on reconnect.

  Background:
    Given the board under test
    And the broker presents the "valid" certificate

  Scenario: the device publishes telemetry
    When the board boots
    Then the device subscribes to "hil/commands" within 20 s
    And the device publishes a message matching /"seq":\d+/ to "hil/telemetry" within 20 s

  Scenario: a command from the broker reaches the device
    When the board boots
    Then the device subscribes to "hil/commands" within 20 s
    When the broker publishes "led=on" to "hil/commands"
    Then the serial output contains "led=on" within 5 s

  Scenario: the device does not flood the broker
    When the board boots
    Then the device connects to the broker within 20 s
    And the device publishes at most 5 messages per 2 s

  @slow
  Scenario: the device reconnects with backoff when the broker restarts
    When the board boots
    Then the device connects to the broker within 20 s
    When the broker restarts
    Then the device opens at most 4 connections per 5 s
    And the device connects to the broker within 30 s

  Scenario: a dropped connection is noticed and re-established
    When the board boots
    Then the device connects to the broker within 20 s
    When the broker drops the device's connection
    Then the device connects to the broker within 20 s
    And the board does not reboot

  Scenario: commands still arrive after the connection was dropped
    When the board boots
    Then the device subscribes to "hil/commands" within 20 s
    When the broker drops the device's connection
    Then the device connects to the broker within 20 s
    And the device subscribes to "hil/commands" within 20 s
    When the broker publishes "led=off" to "hil/commands"
    Then the serial output contains "led=off" within 5 s
