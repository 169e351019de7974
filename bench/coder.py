"""Which AAC coder to ship: CPU per second of audio against speech quality (ITU-T P.862 PESQ, wide band).

The input is what the bridge gets from a call: 8 kHz audio, here speech synthesised by
espeak-ng (several voices, sentences with pauses) and a tone, passed through G.711 µ-law.
Each coder (FFmpeg's ``aac_coder``) encodes it as the bridge does (our upsampler to the
output rate, AAC-LC at the bitrate); FFmpeg's decoder decodes it. PESQ (the ``pesq``
package) compares that with the reference: the same G.711 input, resampled to 16 kHz by
FFmpeg's resampler (not ours), time-aligned by cross-correlation.

    python -m bench.coder --rate 16000 --bitrate 32000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from pesq import pesq

from bench.report import fmt, table
from bridge.media.encoder import AacEncoder, AacSettings
from rtp.g711 import decode_ulaw, encode_ulaw

REPEATS = 5
# aac_coder: fast or twoloop; anmr is experimental in FFmpeg (needs -strict -2): not offered.
# FFmpeg AAC encoder options tried with the fast coder: the low-pass (G.711 carries nothing above
# 4 kHz), perceptual noise substitution and temporal noise shaping (both on by default).
VARIANTS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "fast": ("fast", ()),
    "twoloop": ("twoloop", ()),
    "fast, cutoff 4000": ("fast", (("cutoff", "4000"),)),
    "fast, cutoff 4400": ("fast", (("cutoff", "4400"),)),
    "fast, cutoff 5000": ("fast", (("cutoff", "5000"),)),
    "fast, aac_pns 0": ("fast", (("aac_pns", "0"),)),
    "fast, aac_tns 0": ("fast", (("aac_tns", "0"),)),
    "fast, cutoff 4000, aac_pns 0, aac_tns 0": ("fast", (("cutoff", "4000"), ("aac_pns", "0"), ("aac_tns", "0"))),
    "fast, cutoff 4400, aac_tns 0": ("fast", (("cutoff", "4400"), ("aac_tns", "0"))),
}
SENTENCES = (
    "The conference will begin in a few moments. Please stay on the line.",
    "Thank you for calling. Your call is important to us, and it may be recorded for quality.",
    "Press one for sales, two for support, or stay on the line to speak with an operator.",
    "We are now live. Good morning everyone, and welcome to the quarterly results webinar.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3")


def speech(workdir: Path) -> npt.NDArray[np.int16]:
    """About 25 s of synthetic speech at 8 kHz, four voices, with the pauses between sentences."""
    parts = []
    for index, (sentence, voice) in enumerate(zip(SENTENCES, VOICES, strict=True)):
        wav = workdir / f"speech{index}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), sentence], check=True)
        parts.append(_read(wav, 8000))
        parts.append(np.zeros(4000, np.int16))  # half a second of pause
    return np.concatenate(parts)


def tone(seconds: float = 10.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * 8000)) / 8000
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def _read(path: Path, rate: int) -> npt.NDArray[np.int16]:
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        frames = [r for f in container.decode(audio=0) for r in resampler.resample(f)]
    return np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.int16)


def reference_16k(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """FFmpeg's resampler, 8 -> 16 kHz: the reference PESQ compares with."""
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float32)


def encode_decode(
    pcm: npt.NDArray[np.int16], variant: str, rate: int, bitrate: int
) -> tuple[npt.NDArray[np.float32], float]:
    """The bridge's encoder (CPU seconds measured), then FFmpeg's AAC decoder; mono float at ``rate``."""
    coder, options = VARIANTS[variant]
    encoder = AacEncoder(AacSettings(rate, bitrate, "" if coder == "twoloop" else coder, options=options))
    batch = encoder.input_batch
    started = time.process_time()
    bodies = [body for s in range(0, len(pcm) - batch + 1, batch) for _, body in encoder.encode(pcm[s : s + batch])]
    bodies += [body for _, body in encoder.flush()]
    cpu = time.process_time() - started
    decoder = av.CodecContext.create("aac", "r")
    header = encoder.sequence_header()
    assert header is not None
    decoder.extradata = header[2:]
    decoded = [f.to_ndarray()[0] for body in bodies for f in decoder.decode(av.Packet(body[2:]))]
    return np.concatenate(decoded).astype(np.float32), cpu


def aligned(reference: npt.NDArray[np.float32], degraded: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``degraded`` shifted by the lag of best cross-correlation (encoder priming, filter delays)."""
    window = min(len(reference), 16000 * 4)
    scores = np.correlate(degraded[: window + 4000], reference[:window], mode="valid")
    lag = int(np.argmax(scores))
    out = degraded[lag : lag + len(reference)]
    return np.pad(out, (0, len(reference) - len(out)))


def measure(pcm: npt.NDArray[np.int16], variant: str, rate: int, bitrate: int) -> dict[str, float]:
    telephone = decode_ulaw(encode_ulaw(pcm))  # what arrives over G.711
    decoded, cpu = encode_decode(telephone, variant, rate, bitrate)
    for _ in range(REPEATS - 1):  # the least CPU of several encodes of the same input: the host's noise is one-sided
        cpu = min(cpu, encode_decode(telephone, variant, rate, bitrate)[1])
    if rate != 16000:
        frame = av.AudioFrame.from_ndarray(decoded.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        decoded = np.concatenate([f.to_ndarray()[0] for f in resampler.resample(frame) + resampler.resample(None)])
    reference = reference_16k(telephone)  # flt: already full scale at 1.0
    score = pesq(16000, reference, aligned(reference, decoded), "wb")
    return {"pesqWb": round(float(score), 3), "cpuMsPerAudioSecond": round(cpu / (len(pcm) / 8000) * 1000, 3)}


def run(rate: int, bitrate: int, workdir: Path) -> dict[str, dict[str, dict[str, float]]]:
    inputs = {"speech": speech(workdir), "tone": tone()}
    return {
        variant: {name: measure(pcm, variant, rate, bitrate) for name, pcm in inputs.items()} for variant in VARIANTS
    }


def rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [
            coder,
            fmt(found["speech"]["cpuMsPerAudioSecond"], 2),
            fmt(found["speech"]["pesqWb"], 2),
            fmt(found["tone"]["pesqWb"], 2),
        ]
        for coder, found in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--bitrate", type=int, default=32000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args.rate, args.bitrate, Path(tempfile.mkdtemp(prefix="bridge-coder-")))
    print(f"\nAAC-LC {args.rate} Hz {args.bitrate // 1000} kbit/s mono, input G.711 at 8 kHz")
    print(table(["aac_coder and options", "CPU ms per audio second", "PESQ WB speech", "PESQ WB tone"], rows(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
