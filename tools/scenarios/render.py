"""Render scenario definitions to ``<out>/<name>/video.avi`` (MJPG), ``audio.wav`` and ``truth.json``.

``python -m tools.scenarios [--only NAME] [--out build/scenarios] [--check] [--force]``

A render is keyed by the hash of the definition, the renderer's code and its inputs (pinned package
hashes, the phone photo, the espeak-ng version); an unchanged scenario is skipped. Every output is
written to a temp file in its folder, fsynced and moved into place, the key last.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from edge_app.atomic import write_atomic, write_bytes_atomic
from tools.scenarios import audio, construction, sources
from tools.scenarios.catalog import POSES, StudioPose
from tools.scenarios.compose import Camera, describe_view, scene_image, view_of
from tools.scenarios.scene import SceneAssets
from tools.scenarios.spec import ScenarioSpec, SpecError, load_spec, phone_photos

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "scenarios"
OUT = ROOT / "build" / "scenarios"
VIDEO, AUDIO, TRUTH, KEY = "video.avi", "audio.wav", "truth.json", ".render-key"
RENDER_ERRORS = (SpecError, sources.SourceMissing, audio.SpeechUnavailable, OSError, ValueError)


@dataclass(frozen=True)
class Rendered:
    name: str
    folder: Path
    skipped: bool  # the cached render was still valid


def render_key(spec_path: Path, spec: ScenarioSpec) -> str:
    """Hash of everything the output depends on."""
    digest = hashlib.sha256()
    digest.update(spec_path.read_bytes())
    for code in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(code.name.encode() + code.read_bytes())
    digest.update((ROOT / "tools" / "fixtures.py").read_bytes())
    for package in sources.packages():
        digest.update(f"{package.label}:{package.sha256}".encode())
    for name in sorted(phone_photos(spec)):
        digest.update(sources.phone_inputs_digest())
        photo = sources.find_phone_dir() / name
        digest.update(photo.read_bytes() if photo.is_file() else b"missing")
    if spec.sounds:
        digest.update(audio.espeak_version().encode())
    return digest.hexdigest()


def write_video(spec: ScenarioSpec, path: Path, assets: SceneAssets) -> int:
    """Render every frame into an MJPG AVI (temp file, fsync, rename); returns the frame count."""
    frames = round(spec.duration * spec.fps)
    camera = Camera(spec.seed, frames, spec.fps)

    def fill(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), spec.fps, tuple(spec.frame_size))
        try:
            if not writer.isOpened():
                raise OSError(f"{tmp}: OpenCV cannot write MJPG video here")
            seg_index = 0
            for k in range(frames):
                t = k / spec.fps
                while seg_index + 1 < len(spec.segments) and t >= spec.segments[seg_index].end - 1e-9:
                    seg_index += 1
                segment = spec.segments[seg_index]
                image = scene_image(assets, view_of(segment), t - segment.start)
                writer.write(cv2.cvtColor(camera.capture(image, k), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()

    write_atomic(path, fill, mode=0o644)
    return frames


def validate(spec: ScenarioSpec, assets: SceneAssets, samples: Any) -> dict[str, Any]:
    """The construction figures of the render; ValueError naming every problem when one is off."""
    geometry, problems = construction.check_geometry(spec, assets)
    sounds, audio_problems = construction.check_audio(spec, samples)
    if problems or audio_problems:
        wrong = "; ".join(problems + audio_problems)
        raise ValueError(f"{spec.name}: the render does not show what it defines: {wrong}")
    return {"segments": geometry, "sounds": sounds}


def truth_of(spec: ScenarioSpec, frames: int, key: str, built: dict[str, Any] | None = None) -> dict[str, Any]:
    segments = []
    for seg in spec.segments:
        entry: dict[str, Any] = {"start": seg.start, "end": seg.end, **describe_view(view_of(seg))}
        pose = POSES.get(seg.candidate) if seg.candidate else None
        if isinstance(pose, StudioPose):
            entry["video_frames"] = [pose.frames[0], pose.frames[-1]]
        segments.append(entry)
    return {
        "name": spec.name,
        "description": spec.description,
        "view": spec.view,
        "set": spec.set,
        "fps": spec.fps,
        "duration": spec.duration,
        "frame_size": list(spec.frame_size),
        "frames": frames,
        "enrolled": spec.enrolled,
        "calibration_seconds": spec.calibration_seconds,
        "alerts": [a.model_dump() for a in sorted(spec.alerts, key=lambda a: (a.start, a.kind))],
        "segments": segments,
        "sounds": [s.model_dump() for s in spec.sounds],
        "audio": {"rate": audio.RATE, "channels": 1, "sample_width": 2},
        "construction": built or {},
        "render_key": key,
    }


def render(spec_path: Path, out_root: Path = OUT, force: bool = False) -> Rendered:
    """Render one definition unless its cached render is current."""
    spec = load_spec(spec_path)
    key = render_key(spec_path, spec)
    folder = out_root / spec.name
    key_file = folder / KEY
    outputs = [folder / VIDEO, folder / AUDIO, folder / TRUTH]
    if not force and key_file.is_file() and key_file.read_text().strip() == key and all(p.is_file() for p in outputs):
        return Rendered(spec.name, folder, skipped=True)
    folder.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    samples = audio.render_audio(spec)  # first: a missing espeak-ng fails before the slow part
    assets = SceneAssets()
    built = validate(spec, assets, samples)  # cut-outs and geometry: a bad input fails before any video
    frames = write_video(spec, folder / VIDEO, assets)
    audio.write_wav(folder / AUDIO, samples)
    truth = truth_of(spec, frames, key, built)
    write_bytes_atomic(folder / TRUTH, (json.dumps(truth, indent=1) + "\n").encode(), mode=0o644)
    write_bytes_atomic(key_file, key.encode(), mode=0o644)
    return Rendered(spec.name, folder, skipped=False)


def definitions(folder: Path, only: str | None) -> list[Path]:
    paths = sorted(folder.glob("*.toml"))
    if only is not None:
        paths = [p for p in paths if p.stem == only]
        if not paths:
            have = ", ".join(p.stem for p in sorted(folder.glob("*.toml")))
            raise SpecError(f"no scenario {only!r} in {folder} (have: {have})")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scenarios", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="render one scenario (file stem)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default build/scenarios)")
    parser.add_argument("--definitions", type=Path, default=DEFINITIONS, help="folder of *.toml definitions")
    parser.add_argument("--force", action="store_true", help="render even when the cached render is current")
    parser.add_argument("--check", action="store_true", help="run the int8 models on rendered frames and verify")
    args = parser.parse_args(argv)
    try:
        paths = definitions(args.definitions, args.only)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed: list[str] = []
    rendered: list[Rendered] = []
    for path in paths:
        try:
            done = render(path, args.out, args.force)
        except sources.PhonePhotosMissing as exc:
            if sources.in_ci():
                print(f"FAILED {path.stem}: {exc}", file=sys.stderr)
                failed.append(path.stem)
            else:  # a clone without the phone photos renders everything else; the tests say what was left out
                print(f"SKIPPED {path.stem}: {exc}", file=sys.stderr)
            continue
        except RENDER_ERRORS as exc:  # one bad scenario does not stop the others
            print(f"FAILED {path.stem}: {exc}", file=sys.stderr)
            failed.append(path.stem)
            continue
        rendered.append(done)
        print(f"{done.name}: {'unchanged' if done.skipped else 'rendered'} -> {done.folder}")
    if args.check and rendered:
        from tools.scenarios.check import check_all  # the models are only needed here

        if not check_all([r.folder for r in rendered]):
            failed.append("check")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
