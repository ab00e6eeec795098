"""The stereo recorder hands out the call a stretch at a time; the stretches add up to the whole call."""

from __future__ import annotations

import numpy as np

from calls.pipeline.recording import SETTLE_S, StereoRecorder


def _stereo(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int16).reshape(-1, 2)


def test_settled_stretches_hold_back_the_last_second_and_the_rest_completes_the_call() -> None:
    rate = 100
    recorder = StereoRecorder(rate)
    caller = np.arange(1, 301, dtype=np.int16)  # 3 s
    recorder.caller(caller[:150])
    # An agent frame from 1.0 s to 1.6 s, sent while the caller's stream was at 1.5 s.
    agent = np.full(60, -7, dtype=np.int16)
    recorder.agent(agent, 1.0)

    first = _stereo(recorder.take_settled())
    assert len(first) == 150 - int(SETTLE_S * rate)  # 0.5 s
    assert first[:, 0].tolist() == list(range(1, 51))
    assert first[:, 1].tolist() == [0] * 50

    recorder.caller(caller[150:])
    second = _stereo(recorder.take_settled())
    assert len(second) == 150  # 0.5 s .. 2.0 s
    assert second[:, 0].tolist() == list(range(51, 201))
    assert second[:, 1].tolist() == [0] * 50 + [-7] * 60 + [0] * 40

    recorder.agent(np.full(30, 9, dtype=np.int16), 2.9)  # runs past the caller's end
    rest = _stereo(recorder.take_rest())
    assert len(rest) == 120  # 2.0 s .. 3.2 s
    assert rest[:, 0].tolist() == list(range(201, 301)) + [0] * 20
    assert rest[:, 1].tolist() == [0] * 90 + [9] * 30
    assert recorder.taken_seconds == 3.2
    assert recorder.take_rest() == b""
    assert recorder.take_settled() == b""


def test_an_agent_frame_spanning_two_stretches_is_split_between_them() -> None:
    recorder = StereoRecorder(10)
    recorder.caller(np.zeros(30, dtype=np.int16))
    recorder.agent(np.arange(1, 11, dtype=np.int16), 1.5)  # samples 15..24
    first = _stereo(recorder.take_settled())  # up to sample 20
    rest = _stereo(recorder.take_rest())
    assert first[15:, 1].tolist() == [1, 2, 3, 4, 5]
    assert rest[:5, 1].tolist() == [6, 7, 8, 9, 10]
    assert len(first) + len(rest) == 30
