"""Settings of the frame and audio sources: one pydantic model per kind, picked by its ``type``.

    [camera]
    type = "opencv"
    uri = 0                      # camera index, rtsp:// or http:// URL, or a video file

    [audio]
    type = "wav"
    path = "scenarios/phone/audio.wav"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OpenCVSourceConfig(BaseModel):
    """A camera, network stream or video file read through OpenCV."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["opencv"] = Field(default="opencv", description="OpenCV capture (camera, stream URL, video file)")
    uri: int | str = Field(..., description="camera index (0 = first camera), rtsp:// or http(s):// URL, "
                           "/dev/videoN, or a video file path")
    width: int | None = Field(default=None, gt=0, le=7680, description="frame width to ask a camera for")
    height: int | None = Field(default=None, gt=0, le=4320, description="frame height to ask a camera for")
    fps: float | None = Field(default=None, gt=0, le=240, description="frame rate to ask a camera for")
    read_retries: int = Field(default=20, ge=0, le=10_000, description="failed reads in a row a live source tolerates "
                              "before it raises SourceError")
    retry_delay: float = Field(default=0.05, ge=0, le=10, description="seconds between two tries of a failed live read")
    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds a network stream may take to open or to "
                           "deliver one frame")

    @field_validator("uri")
    @classmethod
    def _camera_index_or_text(cls, value: int | str) -> int | str:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError("uri is empty: expected a camera index, a stream URL or a video file path")
            if value.isascii() and value.isdigit():  # "²".isdigit() is true too
                return int(value)
        elif value < 0:
            raise ValueError(f"uri {value}: a camera index must be 0 or more")
        return value


class PicameraSourceConfig(BaseModel):
    """The Raspberry Pi camera through picamera2 (libcamera)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["picamera2"] = Field(default="picamera2", description="Raspberry Pi camera module via picamera2")
    width: int = Field(default=1280, gt=0, le=4608, description="frame width in pixels")
    height: int = Field(default=720, gt=0, le=2592, description="frame height in pixels")
    fps: float = Field(default=15.0, gt=0, le=120, description="frame rate the sensor is set to")


class ScenarioSourceConfig(BaseModel):
    """A rendered scenario folder (video.avi, optional audio.wav, truth.json) played as a camera."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["scenario"] = Field(default="scenario", description="rendered scenario folder played as a camera")
    path: Path = Field(..., description="folder holding video.avi, truth.json and optionally audio.wav")
    realtime: bool = Field(default=False, description="pace frames to the wall clock like a live camera, so a slow "
                           "analysis drops frames (False: every frame as fast as it is read, deterministic)")
    screen: Path | None = Field(default=None, description="an image shown on the candidate's PC screen, composited "
                                "into every frame while the file exists; the demo's PC client writes its pairing "
                                "QR code there")


FrameSourceConfig = Annotated[
    OpenCVSourceConfig | PicameraSourceConfig | ScenarioSourceConfig, Field(discriminator="type")
]


class WavAudioConfig(BaseModel):
    """A WAV file played as a microphone."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["wav"] = Field(default="wav", description="WAV file played as a microphone")
    path: Path = Field(..., description="the WAV file (PCM 8/16/24/32-bit or float, any channel count)")
    chunk_ms: int = Field(default=30, ge=5, le=1000, description="milliseconds of audio per chunk")
    realtime: bool = Field(default=False, description="deliver each chunk when a microphone would have recorded it "
                           "(False: as fast as it is read)")


class PyAudioConfig(BaseModel):
    """A microphone through PyAudio (PortAudio)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["pyaudio"] = Field(default="pyaudio", description="microphone via PyAudio")
    device_index: int | None = Field(default=None, ge=0, description="PortAudio input device (None: the default input)")
    rate: int = Field(default=16000, ge=8000, le=96000, description="sample rate in Hz")
    chunk_ms: int = Field(default=30, ge=5, le=1000, description="milliseconds of audio per chunk")


AudioSourceConfig = Annotated[WavAudioConfig | PyAudioConfig, Field(discriminator="type")]
