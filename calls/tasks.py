"""Background work for calls (Dramatiq finds actors in each app's ``tasks``): LiveKit's live in its transport."""

from calls.transports.livekit.tasks import (
    livekit_call_finish_overdue_job,
    livekit_number_provision_job,
    livekit_number_release_job,
)

__all__ = ["livekit_call_finish_overdue_job", "livekit_number_provision_job", "livekit_number_release_job"]
