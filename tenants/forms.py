"""Sign-up asks for the business too: one form makes the account and the tenant."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from tenants.models import User
from tenants.services import tenant_create, tenant_slug_validate


class BusinessSignupForm(forms.Form):
    business_name = forms.CharField(max_length=200, label="Business name")
    subdomain = forms.CharField(
        max_length=40,
        label="Subdomain",
        help_text="Your dashboard will live at <subdomain>.voicedesk.",
    )

    def clean_subdomain(self) -> str:
        try:
            return tenant_slug_validate(self.cleaned_data["subdomain"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc

    def signup(self, request: HttpRequest, user: User) -> None:
        tenant_create(
            name=self.cleaned_data["business_name"],
            slug=self.cleaned_data["subdomain"],
            owner=user,
        )
