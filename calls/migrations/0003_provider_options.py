from django.db import migrations, models


def voice_follows_engine(apps, schema_editor):
    # Calls were always built from ``tts_provider``; where ``voice`` said
    # something else it was never heard, so the engine in use wins.
    AgentConfig = apps.get_model("calls", "AgentConfig")
    for config in AgentConfig.objects.exclude(voice=models.F("tts_provider")):
        config.voice = config.tts_provider
        config.save(update_fields=["voice"])


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0002_helpdesk"),
    ]

    operations = [
        migrations.AddField(
            model_name="agentconfig",
            name="stt_options",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Engine options, e.g. {"model": "nova-2", "key_ref": "DEEPGRAM_API_KEY"}.',
            ),
        ),
        migrations.AddField(
            model_name="agentconfig",
            name="tts_options",
            field=models.JSONField(
                blank=True, default=dict, help_text='Engine options, e.g. {"voice": "en-gb", "speed": 1.1}.'
            ),
        ),
        migrations.RunPython(voice_follows_engine, migrations.RunPython.noop),
    ]
