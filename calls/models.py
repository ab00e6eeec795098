"""Tenant-schema models: the agent's configuration, calls and what was said."""

from __future__ import annotations

from django.db import models

COLLECTABLE_FIELDS = ("name", "callback_number", "reason", "address", "email", "preferred_time")


def default_collect() -> list[str]:
    return ["name", "callback_number", "reason"]


def default_categories() -> list[str]:
    return ["general"]


def default_business_hours() -> dict[str, list[str]]:
    """Opening hours per weekday (``mon`` .. ``sun``) as ``[open, close]``; a missing day is closed."""
    return {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def default_sla_hours() -> dict[str, float]:
    """Business hours to resolve a ticket, by priority."""
    return {"urgent": 2, "high": 8, "normal": 24, "low": 40}


class AgentConfig(models.Model):
    """How the receptionist behaves for this tenant. One row per schema."""

    business_name = models.CharField(max_length=200)
    greeting = models.TextField(blank=True, help_text="Empty: a greeting is built from the business name.")
    persona = models.TextField(blank=True)
    # Each engine is a provider name plus its options (``calls.providers.registry``).
    stt_provider = models.CharField(max_length=50, default="whisper")
    stt_options = models.JSONField(
        default=dict, blank=True, help_text='Engine options, e.g. {"model": "nova-2", "key_ref": "DEEPGRAM_API_KEY"}.'
    )
    tts_provider = models.CharField(max_length=50, default="offline")
    tts_options = models.JSONField(
        default=dict, blank=True, help_text='Engine options, e.g. {"voice": "en-gb", "speed": 1.1}.'
    )
    # Engines tried next, in order, when the one above fails; the platform's
    # offline engine always comes last: [{"provider": "cartesia", "options": {...}}].
    stt_fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text='Engines to switch to, in order, e.g. [{"provider": "whisper", "options": {}}].',
    )
    tts_fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text='Engines to switch to, in order, e.g. [{"provider": "cartesia", '
        '"options": {"key_ref": "CARTESIA_API_KEY"}}].',
    )
    dialogue_provider = models.CharField(max_length=50, default="receptionist")
    dialogue_options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Policy options, e.g. {"model": "gpt-4o-mini", "key_ref": "OPENAI_API_KEY"} or '
        '{"model": "llama3.1", "base_url": "http://localhost:11434/v1"}.',
    )
    # Opt-in: after each call its recording is transcribed again by a slower, better model,
    # stored beside the live transcript: {"provider": "assemblyai", "key_ref": "..."}; empty: off.
    post_call_transcription = models.JSONField(
        default=dict,
        blank=True,
        help_text='Transcribe recordings again after the call, e.g. {"provider": "assemblyai", '
        '"key_ref": "ASSEMBLYAI_API_KEY"}. Empty: off.',
    )
    collect = models.JSONField(default=default_collect)
    categories = models.JSONField(default=default_categories)
    # What each category covers, in the business's words: {name: description}.
    # Categories without one use the defaults for common trades.
    category_descriptions = models.JSONField(default=dict, blank=True)
    urgent_keywords = models.JSONField(default=list, blank=True)
    vocabulary = models.JSONField(default=list, blank=True, help_text="Words that help speech recognition.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. America/New_York.")
    business_hours = models.JSONField(default=default_business_hours)
    sla_hours = models.JSONField(default=default_sla_hours)
    # Where a caller who asks for a person is put through, in business hours (E.164); empty: never.
    transfer_number = models.CharField(max_length=16, blank=True)
    # Mask phone numbers and emails in what is stored of what was said (the
    # transcript, the summary, the reason, open questions); the captured
    # fields (the callback number, the email asked for) are kept as given.
    redact_transcripts = models.BooleanField(
        default=False,
        help_text="Mask phone numbers and email addresses in stored transcripts and summaries.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Agent for {self.business_name}"


class CategoryExample(models.Model):
    """A caller's words filed under a category: learned when an agent re-categorizes a phone ticket."""

    category = models.CharField(max_length=50)
    text = models.CharField(max_length=300)
    # The ticket it was learned from (tickets sit above calls: an id, not a key).
    ticket_id = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["category", "text"], name="category_example_unique")]

    def __str__(self) -> str:
        return f"{self.category}: {self.text}"


class FaqEntry(models.Model):
    question = models.CharField(max_length=500)
    answer = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "FAQ entry"
        verbose_name_plural = "FAQ entries"

    def __str__(self) -> str:
        return self.question


class TransferStatus(models.TextChoices):
    """How a transfer of the caller to a person went."""

    NONE = "", "No transfer"
    DIALING = "dialing", "Putting through"
    ANSWERED = "answered", "Put through"
    BUSY = "busy", "Transfer failed: busy"
    NO_ANSWER = "no_answer", "Transfer failed: no answer"
    FAILED = "failed", "Transfer failed"


class Call(models.Model):
    class Status(models.TextChoices):
        RINGING = "ringing", "Ringing"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        ABANDONED = "abandoned", "Abandoned"
        FAILED = "failed", "Failed"
        # The voice process serving it stopped mid-call; finished by the sweeper.
        FAILED_OVER = "failed_over", "Cut off (system fault)"

    class Carrier(models.TextChoices):
        TWILIO = "twilio", "Twilio Media Streams"
        LIVEKIT = "livekit", "LiveKit"
        BROWSER = "browser", "Browser"

    carrier = models.CharField(max_length=20, choices=Carrier.choices, default=Carrier.TWILIO)
    carrier_call_id = models.CharField(max_length=64, db_index=True)
    stream_id = models.CharField(max_length=64, blank=True)
    from_number = models.CharField(max_length=32)
    to_number = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RINGING)
    end_reason = models.CharField(max_length=50, blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Written every few seconds by the process running the call; a call in
    # progress whose heartbeat stops is finished by the sweeper.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    captured = models.JSONField(default=dict, blank=True)
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)

    # The post-call transcript of the recording (when the business opted in), beside the live one.
    class PostCallTranscript(models.TextChoices):
        NONE = "", "None"
        REQUESTED = "requested", "Requested"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    post_call_status = models.CharField(max_length=16, choices=PostCallTranscript.choices, blank=True, default="")
    post_call_transcript = models.TextField(blank=True)
    post_call_ref = models.CharField(max_length=64, blank=True)  # the vendor's transcript id
    # What the vendor's webhook must carry back (its auth header), so a post about this call is its answer.
    post_call_token = models.CharField(max_length=64, blank=True)
    # A member trying the agent from the dashboard: it makes a ticket like any
    # call, but it is not metered or billed, and analytics leave it out by default.
    is_test = models.BooleanField(default=False)
    # A transfer to a person: where to, and how it went (dialing until the carrier says).
    transfer_to = models.CharField(max_length=32, blank=True)
    transfer_status = models.CharField(max_length=20, choices=TransferStatus.choices, blank=True)
    transfer_started_at = models.DateTimeField(null=True, blank=True)
    transfer_ended_at = models.DateTimeField(null=True, blank=True)
    # Media streams offered to another voice process after the first found no
    # process with room (``call_stream_ended``).
    stream_retries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["carrier", "carrier_call_id"], name="call_carrier_id_unique"),
        ]
        indexes = [
            # The sweeper's scan: only calls not ended yet.
            models.Index(
                fields=["status", "heartbeat_at"], name="call_unended_idx", condition=models.Q(ended_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"Call {self.carrier_call_id} from {self.from_number}"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None or self.answered_at is None:
            return None
        return (self.ended_at - self.answered_at).total_seconds()


class Utterance(models.Model):
    class Speaker(models.TextChoices):
        CALLER = "caller", "Caller"
        AGENT = "agent", "Agent"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="utterances")
    speaker = models.CharField(max_length=10, choices=Speaker.choices)
    text = models.TextField()
    # Seconds from the start of the call.
    start_s = models.FloatField()
    end_s = models.FloatField()
    confidence = models.FloatField(null=True, blank=True)
    # For the agent: cut short by the caller; ``text`` then holds what was heard.
    interrupted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call", "start_s", "id"]
        indexes = [models.Index(fields=["call", "start_s"])]

    def __str__(self) -> str:
        return f"{self.speaker}: {self.text[:40]}"


class TurnLatency(models.Model):
    """Timings of one caller turn, in milliseconds after the caller stopped speaking."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turn_latencies")
    turn_index = models.PositiveIntegerField()
    # Null on turns stored before these stages were timed.
    pause_ms = models.FloatField(null=True, blank=True, help_text="End of speech to the pause seen.")
    transcript_ms = models.FloatField(help_text="End of speech to final transcript.")
    endpoint_ms = models.FloatField(null=True, blank=True, help_text="End of speech to the end of the turn decided.")
    decision_ms = models.FloatField(help_text="End of speech to dialogue decision.")
    first_audio_ms = models.FloatField(help_text="End of speech to first synthesized audio.")
    first_frame_ms = models.FloatField(help_text="End of speech to first audio frame sent.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["call", "turn_index"]
        constraints = [
            models.UniqueConstraint(fields=["call", "turn_index"], name="turn_latency_call_turn_unique"),
        ]

    def __str__(self) -> str:
        return f"Turn {self.turn_index}: {self.first_frame_ms:.0f} ms"


class ProviderKey(models.Model):
    """A business's own API key for a cloud speech provider, encrypted with the platform's keys.

    Only ``calls.services`` writes it and only ``calls.selectors`` decrypts it
    (for the engine that uses it, or a key test); pages show ``last4`` alone.
    """

    class Provider(models.TextChoices):
        ELEVENLABS = "elevenlabs", "ElevenLabs"
        CARTESIA = "cartesia", "Cartesia"
        ASSEMBLYAI = "assemblyai", "AssemblyAI"

    provider = models.CharField(max_length=30, choices=Provider.choices, unique=True)
    # A Fernet token (``voicedesk.core.secrets``): never the key itself.
    ciphertext = models.TextField()
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key ending {self.last4}"
