from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from django.contrib import messages
from django.http import HttpRequest

from tenants.models import User
from tenants.services import business_signup_provision


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Businesses sign up on the public site; a tenant host only signs in.
        tenant = getattr(request, "tenant", None)
        return tenant is None or tenant.schema_name == "public"

    def confirm_email(self, request: HttpRequest, email_address: EmailAddress) -> bool:
        # The business asked for at sign-up is made only now: unverified
        # accounts cannot hold subdomains.
        confirmed: bool = super().confirm_email(request, email_address)
        if confirmed and isinstance(email_address.user, User):
            tenant = business_signup_provision(user=email_address.user)
            if tenant is not None:
                domain = tenant.get_primary_domain()
                where = f" at {domain.domain}" if domain else ""
                messages.success(
                    request,
                    f"{tenant.name} is ready{where}. Sign in there to choose a plan, add your phone number "
                    "and make a test call.",
                )
        return confirmed

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth counts failed sign-ins per host ("<host>:<login>"); every
        # business has its own host, so that would give an attacker a fresh
        # allowance per subdomain. One account, one counter.
        login: str = credentials.get("email", credentials.get("username", ""))
        return login.lower()
