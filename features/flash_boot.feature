@flash
Feature: Flashing and booting
  What reaches the flash is what boots; a bad image is caught by the ROM.

  Scenario: a corrupt image stops in the ROM with a checksum error
    Given the board under test
    And the board is flashed with "fixtures/images/corrupt.bin"
    When the board boots
    Then the serial output contains "csum err" within 10 s
    And the serial output never contains "[boot]"

  Scenario: an erased flash never starts an application
    Given the board under test
    And the board is flashed with "fixtures/images/erased.bin"
    When the board boots
    Then the serial output contains "ets_main.c" within 10 s

  Scenario: re-flashing a good image brings the device back
    Given the board under test
    And the board is flashed with "fixtures/images/corrupt.bin"
    When the board boots
    Then the serial output contains "csum err" within 10 s
    When the board is flashed with "fixtures/images/reference.bin"
    And the board boots
    Then the serial output matches /\[boot\] fw=\S+ version=\S+/ within 10 s

  Scenario: the boot is clean and stays up
    Given the board under test
    And the broker presents the "valid" certificate
    When the board boots
    Then the serial output matches /rst cause:2, boot mode:\(3,\d\)/ within 10 s
    And the device connects to the broker within 20 s
    And the board does not reboot
