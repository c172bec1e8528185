# Bad-config mode: no valid config, so nothing else of the firmware runs.
# Its own module, imported only then, so its code is not on the heap of a
# device that is working.
import time

import board
import feedback
import patterns


def show_bad_config(message):
    """No valid config: say why on the REPL and blink/beep BAD_CONFIG until
    someone fixes it. No watchdog is started, so this is not a boot loop."""
    print("CONFIG ERROR: %s" % message)
    print("Fix config.json on the device (mpremote fs cp config.json :config.json) and reset.")
    buzzer, vibration, led = board.feedback_outputs()
    rounds = 0
    while True:
        for hz, vib, on, ms in patterns.steps(patterns.BAD_CONFIG):
            buzzer.freq(hz or 2700)
            buzzer.duty_u16(feedback.DUTY_ON if hz else 0)
            vibration.value(vib)
            led.value(on)
            time.sleep_ms(ms)
        rounds += 1
        if rounds % 30 == 0:
            print("CONFIG ERROR: %s" % message)
