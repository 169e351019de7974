"""Recording file formats checked by parsers we did not write: Python's ``wave`` module, FFmpeg
(through PyAV) and hand-checked header bytes; a file cut short is valid up to its last flush."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest

from bridge.media.encoder import new_encoder
from bridge.model import OutputSpec
from bridge.recording import adts, fmp4, wav
from rtp.g711 import encode_ulaw

# RIFF, size 36 + 320, WAVE, "fmt " 16, PCM, 1 channel, 8000 Hz, 16000 B/s, align 2, 16 bits, "data" 320
PCM_HEADER_8K_MONO_320 = bytes.fromhex(
    "524946466401000057415645666d74201000000001000100401f0000803e0000020010006461746140010000"
)


def tone(rate: int, seconds: float, frequency: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16)
    return mono if channels == 1 else np.repeat(mono[:, None], channels, axis=1)


def dominant(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_pcm_header_matches_the_hand_checked_bytes() -> None:
    assert wav.header(wav.WavFormat(wav.PCM, 8000, 1), 320) == PCM_HEADER_8K_MONO_320


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 1), (24000, 2)])
def test_pcm_files_read_back_with_the_wave_module(rate: int, channels: int) -> None:
    samples = tone(rate, 0.5, channels=channels)
    fmt = wav.WavFormat(wav.PCM, rate, channels)
    data = wav.header(fmt, samples.nbytes) + samples.tobytes()
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (rate, channels, 2)
        frames = np.frombuffer(reader.readframes(reader.getnframes()), np.int16)
    assert np.array_equal(frames, samples.reshape(-1))


def test_mulaw_file_decodes_in_ffmpeg_to_the_tone() -> None:
    pcm = tone(8000, 1.0)
    fmt = wav.WavFormat(wav.MULAW, 8000, 1)
    data = wav.header(fmt, len(pcm)) + encode_ulaw(pcm)
    with av.open(io.BytesIO(data), format="wav") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_mulaw" and stream.rate == 8000
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
    assert len(decoded) == 8000 and abs(dominant(decoded, 8000) - 440) <= 1


def test_a_header_left_stale_by_a_crash_is_repaired_and_a_torn_sample_cut_off() -> None:
    fmt = wav.WavFormat(wav.PCM, 16000, 1)
    samples = tone(16000, 1.0)
    stale = wav.header(fmt, 3200) + samples.tobytes() + b"\x01"  # sizes of the first 0.1 s, half a sample more
    fixed = wav.repair(stale[: fmt.header_size], len(stale))
    assert fixed is not None
    new_header, length = fixed
    assert length == fmt.header_size + samples.nbytes
    with wave.open(io.BytesIO(new_header + stale[fmt.header_size : length])) as reader:
        assert reader.getnframes() == 16000
    assert wav.repair(new_header, length) is None  # a right file is left alone


def test_parse_refuses_what_it_did_not_write() -> None:
    with pytest.raises(wav.NotOurWav):
        wav.parse(b"RIFX" + bytes(60))


def _aac_frames(rate: int, seconds: float, channels: int = 1) -> tuple[bytes, list[bytes]]:
    encoder = new_encoder(OutputSpec("aac", rate, 32000, "fast", channels=channels), rate)
    header = encoder.sequence_header()
    assert header is not None
    bodies = encoder.encode(tone(rate, seconds, channels=channels)) + encoder.flush()
    return header[2:], [body[2:] for _ts, body in bodies]


def _decode(data: bytes) -> tuple[int, int, np.ndarray]:
    with av.open(io.BytesIO(data), format="mp4") as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        return stream.rate, stream.channels, np.concatenate(frames, axis=1)


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (48000, 2)])
def test_fragmented_mp4_plays_in_ffmpeg_with_every_frame(rate: int, channels: int) -> None:
    asc, frames = _aac_frames(rate, 2.0, channels)
    data = fmp4.init_segment(asc, rate, channels, 32000)
    for sequence, start in enumerate(range(0, len(frames), 16), 1):
        data += fmp4.fragment(sequence, start * fmp4.AAC_FRAME_SAMPLES, frames[start : start + 16])
    got_rate, got_channels, decoded = _decode(data)
    assert (got_rate, got_channels) == (rate, channels)
    assert decoded.shape[1] == len(frames) * fmp4.AAC_FRAME_SAMPLES
    assert fmp4.sample_count(data) == len(frames)
    middle = decoded[0, rate // 2 : rate // 2 + rate]
    assert abs(dominant(middle, rate) - 440) <= 2


def test_fragmented_mp4_cut_inside_a_fragment_plays_up_to_the_last_whole_one() -> None:
    asc, frames = _aac_frames(16000, 3.0)
    data = fmp4.init_segment(asc, 16000, 1)
    ends = []
    for sequence, start in enumerate(range(0, len(frames), 16), 1):
        data += fmp4.fragment(sequence, start * 1024, frames[start : start + 16])
        ends.append(len(data))
    cut = data[: ends[1] + 100]  # two whole fragments and the start of the third
    assert fmp4.complete_length(cut) == ends[1]
    assert fmp4.sample_count(cut) == 32
    _rate, _channels, decoded = _decode(cut[: fmp4.complete_length(cut)])
    assert decoded.shape[1] == 32 * 1024


def test_descriptor_sizes_above_127_use_continuation_bytes() -> None:
    assert fmp4._descriptor(5, bytes(200))[:3] == bytes([5, 0x81, 0x48])  # 200 = 1 * 128 + 72


def test_adts_header_matches_the_hand_checked_bytes() -> None:
    # 16 kHz (index 8), mono, LC, 100-byte frame: length 107 = 0b0000001101011
    assert adts.adts_header(100, 16000, 1) == bytes([0xFF, 0xF1, 0x60, 0x40, 0x0D, 0x7F, 0xFC])


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2)])
def test_adts_stream_decodes_in_ffmpeg(rate: int, channels: int) -> None:
    _asc, frames = _aac_frames(rate, 1.0, channels)
    with av.open(io.BytesIO(adts.adts(frames, rate, channels)), format="aac") as container:
        stream = container.streams.audio[0]
        decoded = [f.to_ndarray() for f in container.decode(stream)]
        assert (stream.rate, stream.channels) == (rate, channels)
    samples = np.concatenate(decoded, axis=1)[0]
    assert samples.shape[0] == len(frames) * 1024
    assert abs(dominant(samples[rate // 4 : rate // 4 + rate // 2], rate) - 440) <= 3
