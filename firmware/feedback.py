# Plays feedback patterns on the buzzer (PWM), vibration motor and LED.
# One-shot patterns (alarm queued, delivered, ...) interrupt; a background
# pattern (pre-alarm, no connection) loops underneath while its state lasts.
import asyncio

import patterns

DUTY_ON = 32768  # 50 %: loudest square wave for a piezo


class Player:
    def __init__(self, buzzer, vibration, led, silent=False):
        self.buzzer = buzzer
        self.vibration = vibration
        self.led = led
        self.silent = silent
        self.pending = []  # one-shot pattern names, in order
        self.background = None
        self.kick = asyncio.Event()
        self.playing = None

    def play(self, name):
        self.pending.append(name)
        self.kick.set()

    def set_background(self, name):
        if name != self.background:
            self.background = name
            self.kick.set()

    def _output(self, hz, vib, led):
        if hz:
            self.buzzer.freq(hz)
            self.buzzer.duty_u16(DUTY_ON)
        else:
            self.buzzer.duty_u16(0)
        self.vibration.value(vib)
        self.led.value(led)

    async def _wait(self, ms):
        """Sleep ms; True if something new should interrupt."""
        self.kick.clear()
        try:
            await asyncio.wait_for_ms(self.kick.wait(), ms)
            return True
        except asyncio.TimeoutError:
            return False

    async def run(self):
        while True:
            if self.pending:
                name = self.pending.pop(0)
                oneshot = True
            else:
                name = self.background
                oneshot = False
            if name is None:
                self._output(0, 0, 0)
                self.playing = None
                await self._wait(1000)
                continue
            self.playing = name
            for hz, vib, led, ms in patterns.steps(name, self.silent):
                self._output(hz, vib, led)
                # A one-shot plays to the end (it carries a message); a
                # background loop yields at once to anything new.
                if oneshot:
                    await asyncio.sleep_ms(ms)
                elif await self._wait(ms):
                    break
            self._output(0, 0, 0)
