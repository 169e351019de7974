"""One call's media on a fake clock with fake encoders: the encoder watchdog, the no-audio timeout
and an ingest call's frames straight into playout. No socket: an ingest call binds none."""

from __future__ import annotations

import asyncio
import audioop  # the standard library's G.711 encoder: an implementation we did not write
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.channel.protocol import DestinationStart, EncoderRestarted, MediaReport
from bridge.config import BridgeConfig
from bridge.media.call_media import CHECK_SECONDS, WATCHDOG_SECONDS, CallMedia
from bridge.media.encoder import PcmuFlvEncoder
from bridge.media.slate import SlateCache
from bridge.model import OutputSpec, VideoSpec
from bridge.rtmp.url import parse_target
from rtp.peer import Peer
from tests.support.fake_clock import FakeClock

AAC16 = OutputSpec("aac", 16000, 32000, "fast")


class FakeEncoder(PcmuFlvEncoder):
    """The G.711 passthrough encoder, which can be made to stop answering (``stuck``)."""

    def __init__(self, stuck: bool) -> None:
        super().__init__()
        self.stuck = stuck
        self.blocks: list[npt.NDArray[np.int16]] = []

    def encode(self, pcm: npt.NDArray[np.int16]) -> list[tuple[int, bytes]]:
        self.blocks.append(pcm.copy())
        return [] if self.stuck else super().encode(pcm)


class FakeTicker:
    def schedule(self, job: Any, deadline: float) -> None:
        pass

    def cancel(self, job: Any) -> None:
        pass


def _media(
    encoders: list[FakeEncoder], reports: list[MediaReport], clock: FakeClock, timeout: float = 30.0
) -> CallMedia:
    target = parse_target("rtmp://127.0.0.1:1/live", "s")
    destination = DestinationStart(
        target=target, label=target.display(), audio=AAC16, video=VideoSpec(), authmod="adobe", secrets=[]
    )
    config = BridgeConfig.model_validate({"rtp": {"timeout": timeout}})
    pending = iter(encoders)
    return CallMedia(
        config,
        None,
        None,  # an ingest call: frames by push_feed
        Peer(("", 0), receiving=False),
        [destination],
        False,
        lambda spec, rate: next(pending),
        reports.append,
        lambda *_: None,
        SlateCache(),
        FakeTicker(),  # type: ignore[arg-type]
        clock=clock,
    )


async def _started(media: CallMedia) -> asyncio.Task[str]:
    task = asyncio.create_task(media._media())
    for _ in range(100):
        await asyncio.sleep(0)
        if media.pipeline is not None:
            return task
    raise AssertionError("the pipeline never started")


def _tone(n: int) -> bytes:
    t = (np.arange(160) + n * 160) / 8000
    return (np.sin(2 * np.pi * 440.0 * t) * 8000).astype("<i2").tobytes()


async def test_an_encoder_that_stops_answering_is_replaced_after_the_watchdog_time() -> None:
    reports: list[MediaReport] = []
    stuck, healthy = FakeEncoder(stuck=True), FakeEncoder(stuck=False)
    clock = FakeClock()
    media = _media([stuck, healthy], reports, clock)
    task = await _started(media)
    assert media.pipeline is not None
    start = media.pipeline.clock.start
    while clock.now < start + WATCHDOG_SECONDS - 0.1:  # nine and a bit seconds of nothing encoded: no restart
        clock.now += 0.02
        assert media.tick(clock.now) is not None
    assert media.encoder_restarts == 0 and stuck.blocks
    while media.tick(clock.now) is not None:
        clock.now += 0.02
    assert clock.now - start <= WATCHDOG_SECONDS + CHECK_SECONDS + 0.02  # checked every CHECK_SECONDS
    for _ in range(10):
        await asyncio.sleep(0)
    assert media.encoder_restarts == 1 and reports == [EncoderRestarted(reason="no encoded audio for 10 s")]
    for _ in range(50 * 15):  # the new encoder answers (after its first 80 ms): no further restart in 15 s
        clock.now += 0.02
        assert media.tick(clock.now) is not None
    assert healthy.encoded_packets > 15 * 12 - 5 and media.encoder_restarts == 1  # one per 80 ms
    assert media.counters().framesEncoded == healthy.encoded_packets
    task.cancel()
    await media.close()


async def test_feed_frames_are_played_out_and_silence_ends_the_call_after_the_timeout() -> None:
    reports: list[MediaReport] = []
    encoder = FakeEncoder(stuck=False)
    clock = FakeClock()
    media = _media([encoder], reports, clock, timeout=5.0)
    task = await _started(media)
    assert media.pipeline is not None
    for n in range(100):  # 2 s of frames, pushed as they come and pulled at each tick
        media.push_feed(0, n * 160, audioop.lin2ulaw(_tone(n), 2), clock.now)
        clock.now += 0.02
        media.tick(clock.now)
    heard = np.concatenate(encoder.blocks)
    assert np.abs(heard).max() > 4000  # the tone came through playout to the encoder
    assert media.counters().packets == 100 and media.counters().ingestTracks == 1
    last_frame = clock.now - 0.02
    while media.tick(clock.now) is not None:
        clock.now += 0.02
    assert 4.9 <= clock.now - last_frame <= 5.2  # rtp.timeout counted from the last frame
    assert await task == "no RTP received for 5 s"
    await media.close()
