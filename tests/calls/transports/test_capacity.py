"""A voice process's count of the calls it runs, held to VOICE_PROCESS_CAPACITY."""

from __future__ import annotations

from calls.transports.capacity import VoiceCapacity


def test_places_are_taken_up_to_the_capacity_and_given_back(settings) -> None:
    settings.VOICE_PROCESS_CAPACITY = 2
    capacity = VoiceCapacity()

    taken = [capacity.try_acquire() for _ in range(3)]

    assert (taken, capacity.in_use) == ([True, True, False], 2)
    capacity.release()
    assert (capacity.try_acquire(), capacity.in_use) == (True, 2)


def test_a_lowered_capacity_applies_to_the_next_call_and_releases_never_go_below_zero(settings) -> None:
    settings.VOICE_PROCESS_CAPACITY = 3
    capacity = VoiceCapacity()
    assert [capacity.try_acquire() for _ in range(2)] == [True, True]

    settings.VOICE_PROCESS_CAPACITY = 1
    assert capacity.try_acquire() is False
    for _ in range(4):
        capacity.release()
    assert (capacity.in_use, capacity.try_acquire(), capacity.try_acquire()) == (0, True, False)
