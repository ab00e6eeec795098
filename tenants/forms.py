"""Sign-up asks for the business too; it is made once the owner's email is verified."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from tenants.models import User
from tenants.services import business_signup_record, tenant_slug_validate


class BusinessSignupForm(forms.Form):
    business_name = forms.CharField(max_length=200, label="Business name")
    subdomain = forms.CharField(
        max_length=40,
        label="Subdomain",
        help_text=f"Your dashboard's address: your-subdomain.{settings.VOICEDESK_BASE_DOMAIN}",
    )

    def clean_subdomain(self) -> str:
        try:
            return tenant_slug_validate(self.cleaned_data["subdomain"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc

    def signup(self, request: HttpRequest, user: User) -> None:
        business_signup_record(user=user, name=self.cleaned_data["business_name"], slug=self.cleaned_data["subdomain"])


class BusinessSubdomainForm(forms.Form):
    """Another subdomain, when the one asked for at sign-up was taken before the email was verified."""

    subdomain = forms.CharField(max_length=40, label="Subdomain")

    def clean_subdomain(self) -> str:
        try:
            return tenant_slug_validate(self.cleaned_data["subdomain"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
