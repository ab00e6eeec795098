"""Registered transports and the websocket routes mounted for them."""

from django.urls import resolve, reverse

from calls.audio import AudioFormat
from calls.routing import carrier_http_urlpatterns, carrier_websocket_urlpatterns
from calls.transports import TRANSPORTS
from calls.transports.browser.consumer import BrowserTestCallConsumer
from calls.transports.twilio.consumer import TwilioMediaStreamConsumer
from calls.transports.twilio.views import twilio_voice_webhook


def test_twilio_declares_its_wire_audio_and_playback_reports() -> None:
    twilio = TRANSPORTS["twilio"]
    assert twilio.audio == AudioFormat(encoding="mulaw", sample_rate=8000, frame_ms=20)
    assert (twilio.audio.frame_samples, twilio.audio.frame_bytes) == (160, 160)
    assert twilio.reports_playback is True
    assert twilio.consumer is TwilioMediaStreamConsumer


def test_the_browser_test_call_sends_pcm16_at_16_khz_and_is_signed_in_by_the_session() -> None:
    browser = TRANSPORTS["browser"]
    assert browser.audio == AudioFormat(encoding="pcm16", sample_rate=16000, frame_ms=20)
    assert (browser.audio.frame_samples, browser.audio.frame_bytes) == (320, 640)
    assert (browser.reports_playback, browser.session_auth, browser.http_urls) == (False, True, ())
    assert browser.consumer is BrowserTestCallConsumer
    assert TRANSPORTS["twilio"].session_auth is False


def test_every_transport_with_a_consumer_gets_its_media_websocket() -> None:
    assert sorted(TRANSPORTS) == ["browser", "livekit", "twilio"]
    routes = [str(pattern.pattern) for pattern in carrier_websocket_urlpatterns]
    # LiveKit's media reaches the agent worker in the room, not a websocket of ours.
    assert TRANSPORTS["livekit"].consumer is None
    assert routes == ["ws/twilio/stream", "ws/test-call/"]


def test_livekit_declares_the_rooms_audio_and_no_playback_reports() -> None:
    livekit = TRANSPORTS["livekit"]
    assert livekit.audio == AudioFormat(encoding="pcm16", sample_rate=48000, frame_ms=20)
    assert (livekit.audio.frame_samples, livekit.audio.frame_bytes) == (960, 1920)
    assert livekit.reports_playback is False


def test_every_transport_gets_its_webhooks_on_the_public_host() -> None:
    assert [str(pattern.pattern) for pattern in carrier_http_urlpatterns] == [
        "twilio/voice",
        "twilio/stream-ended",
        "twilio/dial-ended",
        "livekit/webhook",
    ]
    assert reverse("twilio-stream-ended", urlconf="voicedesk.urls_public") == "/twilio/stream-ended"
    assert reverse("twilio-dial-ended", urlconf="voicedesk.urls_public") == "/twilio/dial-ended"
    assert reverse("livekit-webhook", urlconf="voicedesk.urls_public") == "/livekit/webhook"
    assert reverse("twilio-voice", urlconf="voicedesk.urls_public") == "/twilio/voice"
    assert resolve("/twilio/voice", urlconf="voicedesk.urls_public").func is twilio_voice_webhook
