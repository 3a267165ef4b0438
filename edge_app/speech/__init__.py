"""Speech on the unit: keyword spotting over the microphone's chunks (no transcript ever leaves the unit)."""
