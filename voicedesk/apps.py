"""The composition layer as an app, and the Django admin app with the owner's admin site as ``admin.site``."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class VoicedeskConfig(AppConfig):
    """The composition layer, for the commands that span the product apps (``seed_demo``)."""

    name = "voicedesk"
    verbose_name = "VoiceDesk"


class OwnerAdminConfig(AdminConfig):
    default_site = "voicedesk.web.admin_site.OwnerAdminSite"
