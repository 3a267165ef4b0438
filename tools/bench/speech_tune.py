"""Choose the keyword spotter's thresholds on the tuning sentences alone: ``python -m tools.bench.speech_tune``.

Every keyword is tried at each level of LEVELS (all keywords at once, as the unit runs them); a keyword's
threshold is the most lenient level that raised no false hit of it on any tuning sentence, when that
level also found it at least once; otherwise the most lenient level with no false hit of it (it is then
rarely reported). Prints the THRESHOLDS table for ``edge_app/rules/presets.py``.
"""

from __future__ import annotations

from collections import Counter

from edge_app.rules.presets import KEYWORDS
from edge_app.speech.keywords import build_spotter, spot
from tools.bench.speech import TUNING
from tools.bench.speech_media import RATE, espeak, pad

LEVELS = (1e20, 1e10, 1e5, 1e2, 1.0, 1e-2, 1e-5, 1e-10, 1e-15, 1e-20, 1e-30, 1e-40)  # strict -> lenient


def main() -> int:
    clips = [(text, pad(espeak(text, voice))) for text, voice in TUNING]
    said = [{w for w in KEYWORDS if f" {w} " in f" {text} "} for text, _ in clips]
    chosen: dict[str, float] = {}
    found_at: dict[str, bool] = {}
    for level in LEVELS:
        spotter = build_spotter(KEYWORDS, {}, level)
        hits, false = Counter[str](), Counter[str]()
        for (_, x), words in zip(clips, said, strict=True):
            heard = {k.word for k in spot(spotter, x, RATE)}
            hits.update(heard & words)
            false.update(heard - words)
        print(f"{level:.0e}: " + " ".join(f"{k}:{hits[k]}/{false[k]}" for k in KEYWORDS), flush=True)
        for k in KEYWORDS:
            if false[k] == 0 and (hits[k] > 0 or not found_at.get(k)):
                chosen[k], found_at[k] = level, hits[k] > 0 or found_at.get(k, False)
    print("THRESHOLDS = {" + ", ".join(f'"{k}": {v:.0e}' for k, v in chosen.items()) + "}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
