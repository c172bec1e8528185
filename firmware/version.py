# Firmware version, reported in heartbeats and the birth message.
FW = "0.1.0"
