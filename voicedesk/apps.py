"""The Django admin app, with the owner's admin site as ``admin.site``."""

from django.contrib.admin.apps import AdminConfig


class OwnerAdminConfig(AdminConfig):
    default_site = "voicedesk.web.admin_site.OwnerAdminSite"
