"""Speech figures: the unit's VAD heuristic against WebRTC's VAD, keyword spotting hits and false hits, CPU cost.

VAD, per real recording: speech recall (share of 30 ms chunks inside aligned words that the detector
calls voice, after its onset and hangover) and false-voice rate on noise (share of chunks called voice).
Keywords: hits, misses and false hits with the standard preset's list and thresholds on the tuning
sentences (espeak-ng en-us, the ones the thresholds were chosen on), on check sentences (another
voice, other sentences) and on real recordings. Cost: real-time factor, CPU seconds per second of
audio (median of 5 runs). ``python -m tools.bench.speech [--out build/bench/speech.json]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.audio_features import VoiceActivityDetector
from edge_app.capture.base import AudioChunk
from edge_app.rules.presets import KEYWORDS, THRESHOLDS
from edge_app.speech.keywords import KeywordSpotter, build_spotter, spot
from tools.bench import write_report
from tools.bench.speech_media import RATE, Recording, espeak, noise_recordings, pad, speech_recordings
from tools.bench.speech_media import spoken_recordings as real_spoken
from tools.bench.vad_webrtc import WebrtcVad

CHUNK = 480  # 30 ms at 16 kHz, the unit's default chunk
RUNS = 5
# (text, voice): the tuning sentences the thresholds were chosen on, and check sentences nobody tuned on
TUNING = [(f"I think {k} is right", "en-us") for k in KEYWORDS] + [
    (f"the next one is {k} again", "en-us") for k in KEYWORDS] + [(s, "en-us") for s in (
        "let me read this passage quietly to myself", "it is raining outside and the bus is late",
        "the weather has been very cold this week", "please open your books at the beginning",
        "I would like some coffee with milk", "she walked home through the park yesterday",
        "my brother plays football on saturday", "the library closes early in the summer",
        "we should finish the project by friday", "can you hear the music from the street",
        "he was not an ill disposed young man", "this chapter explains the history of rome")]
CHECK = [(s, "en+f3") for s in (
    "is the answer to question four the second one", "number seven, I am sure it is ten",
    "what did you put for five", "skip that question and go on", "the option on the left looks better",
    "my sister is coming over tonight", "they sell fresh bread every morning",
    "the train was delayed by heavy snow", "remember to water the plants", "turn left after the bridge")]
Detector = Callable[[], Any]
DETECTORS: dict[str, Detector] = {"heuristic (unit)": VoiceActivityDetector, "webrtc": WebrtcVad}


def chunks(x: np.ndarray) -> list[AudioChunk]:
    return [AudioChunk(x[i : i + CHUNK], RATE, i / RATE) for i in range(0, x.size - CHUNK + 1, CHUNK)]


def voice_flags(make: Detector, x: np.ndarray) -> np.ndarray:
    vad = make()
    return np.array([vad.update(c).active for c in chunks(x)], bool)


def speech_mask(rec: Recording, lead: float, size: int) -> np.ndarray:
    centres = (np.arange(size) + 0.5) * CHUNK / RATE - lead
    return np.array([any(b <= t < e for b, e in rec.speech) for t in centres], bool)


def vad_table() -> list[dict[str, Any]]:
    rows = []
    synthetic = Recording("espeak-ng (synthetic)", espeak(
        "Please keep your eyes on your own screen. The examination finishes in twenty minutes."), [])
    for rec in [*speech_recordings(), synthetic]:
        x = pad(rec.samples)
        row: dict[str, Any] = {"recording": rec.name, "kind": "speech"}
        for name, make in DETECTORS.items():
            flags = voice_flags(make, x)
            mask = speech_mask(rec, 0.5, flags.size) if rec.speech else np.array(
                [abs(float(np.mean(c.samples ** 2))) > 10 ** (-45 / 10) for c in chunks(x)])
            row[name] = round(float(flags[mask].mean()), 3)
        rows.append(row)
    for rec in noise_recordings():
        x = pad(np.tile(rec.samples, max(1, round(3 * RATE / rec.samples.size))))  # short effects: repeated to 3 s
        row = {"recording": rec.name, "kind": "noise"}
        for name, make in DETECTORS.items():
            row[name] = round(float(voice_flags(make, x).mean()), 3)
        rows.append(row)
    return rows


def keyword_table(spotter: KeywordSpotter) -> dict[str, Any]:
    def judge(name: str, x: np.ndarray, text: str) -> dict[str, Any]:
        said = [w for w in KEYWORDS if f" {w} " in f" {text.replace(',', '')} "]
        heard = sorted({k.word for k in spot(spotter, pad(x), RATE)})
        return {"recording": name, "said": said, "heard": heard, "hits": len(set(said) & set(heard)),
                "misses": len(set(said) - set(heard)), "false": len(set(heard) - set(said))}

    out: dict[str, Any] = {}
    for label, sentences in (("tuning", TUNING), ("check", CHECK)):
        out[label] = [judge(f"{voice}: {text}", espeak(text, voice), text) for text, voice in sentences]
    out["real"] = [judge(r.name, r.samples, r.text) for r in real_spoken() + speech_recordings()]
    for label in ("tuning", "check", "real"):
        rows = out[label]
        out[f"{label}_total"] = {k: sum(r[k] for r in rows) for k in ("hits", "misses", "false")}
    return out


def real_time_factor(step: Callable[[AudioChunk], object], x: np.ndarray, reset: Callable[[], object]) -> float:
    """Median CPU seconds per audio second over RUNS passes."""
    factors = []
    for _ in range(RUNS):
        reset()
        begun = time.process_time()
        for chunk in chunks(x):
            step(chunk)
        factors.append((time.process_time() - begun) / (x.size / RATE))
    return round(statistics.median(factors), 4)


def cost_table(spotter: KeywordSpotter) -> dict[str, float]:
    text = ". ".join(t for t, _ in CHECK)
    x = pad(np.concatenate([espeak(text, "en-us")] * 2))
    holder: dict[str, Any] = {}

    def fresh(make: Detector) -> Callable[[], object]:
        return lambda: holder.__setitem__("vad", make())

    out = {"audio_seconds": round(x.size / RATE, 1),
           "keywords": real_time_factor(lambda c: spotter.feed(c), x, spotter.reset)}
    for name, make in DETECTORS.items():
        out[f"vad {name}"] = real_time_factor(lambda c: holder["vad"].update(c), x, fresh(make))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/speech.json"))
    args = parser.parse_args(argv)
    spotter = build_spotter(KEYWORDS, THRESHOLDS)
    vad = vad_table()
    print("VAD: speech recall (speech rows) / false-voice rate (noise rows), the unit's heuristic vs webrtc")
    for row in vad:
        print(f"  {row['kind']:6} {row['recording']:42} " + "  ".join(f"{n}: {row[n]:.3f}" for n in DETECTORS))
    keywords = keyword_table(spotter)
    print("keyword spotting, standard preset (hits / misses / false hits):")
    for label in ("tuning", "check", "real"):
        print(f"  {label:7} {keywords[label + '_total']}")
        for row in keywords[label]:
            if row["misses"] or row["false"]:
                print(f"          {row['recording'][:60]:60} said {row['said']} heard {row['heard']}")
    cost = cost_table(spotter)
    print("real-time factor (CPU s per audio s, median of 5):", cost)
    write_report({"vad": vad, "keywords": keywords, "cost": cost}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
