"""Reads on the platform. Every read takes the acting user or the tenant."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

import phonenumbers
from allauth.account.models import EmailAddress
from django.db.models import QuerySet

from tenants.models import ApiKey, BusinessSignup, Membership, PhoneNumber, Tenant, User


def tenant_membership_get(*, user: User, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return Membership.objects.filter(user=user, tenant=tenant).first()


def tenant_list_for_user(*, user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user, is_template=False).prefetch_related("domains").order_by("name")


def business_signup_for_user(*, user: User) -> BusinessSignup | None:
    """The business ``user`` signed up for and that is not made yet, if any."""
    if not user.is_authenticated:
        return None
    return BusinessSignup.objects.filter(user=user).first()


@dataclass(frozen=True, slots=True)
class SignupStep:
    """One step of signing a business up, for the progress list: ``state`` is done, now or later."""

    label: str
    state: str
    detail: str


def signup_progress(*, user: User, signup: BusinessSignup) -> list[SignupStep]:
    """Where ``user``'s sign-up for ``signup`` stands, in the order a business goes live.

    The account exists; the email is confirmed or awaited; the business is
    made once it is (a subdomain taken meanwhile waits for another). Plan,
    number and test call follow on the business's own dashboard.
    """
    verified = EmailAddress.objects.filter(user=user, verified=True).exists()
    if not verified:
        business = SignupStep(
            "Your business", "later", f"We create {signup.name} at {signup.slug} as soon as your email is confirmed."
        )
    elif signup.error:
        business = SignupStep("Your business", "now", f"{signup.error} Choose another subdomain for {signup.name}.")
    else:
        business = SignupStep("Your business", "now", f"We are creating {signup.name} at {signup.slug}.")
    return [
        SignupStep("Your account", "done", user.email),
        SignupStep("Your email address", "done", "Confirmed.")
        if verified
        else SignupStep("Your email address", "now", f"Follow the link we sent to {user.email}."),
        business,
        SignupStep("Plan, phone number and a test call", "later", "On your business's dashboard, once it is made."),
    ]


def tenant_for_phone_number(*, number: str) -> Tenant | None:
    """The tenant a dialled number belongs to, or ``None`` for an unknown or invalid number."""
    try:
        e164 = phonenumbers.format_number(phonenumbers.parse(number, "US"), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return None
    phone = PhoneNumber.objects.select_related("tenant").filter(e164=e164).first()
    return phone.tenant if phone is not None else None


_API_KEY_RE = re.compile(r"^vd_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
# Compared against when no key has the prefix, so an unknown prefix takes as long as a wrong secret.
_API_KEY_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    """The tenant's keys, newest first, revoked ones included (they show when they were revoked)."""
    return ApiKey.objects.filter(tenant=tenant).select_related("created_by").order_by("-created_at", "-id")


def api_key_verify(*, raw_key: str) -> ApiKey | None:
    """The key whose secret ``raw_key`` carries, whatever its tenant or state; ``None`` if none matches.

    The caller decides what a revoked key or another tenant's key means.
    """
    match = _API_KEY_RE.match(raw_key.strip())
    if match is None:
        return None
    prefix, secret = match.groups()
    key = ApiKey.objects.select_related("tenant", "created_by").filter(prefix=prefix).first()
    supplied = hashlib.sha256(secret.encode()).hexdigest()
    expected = key.hashed if key is not None else _API_KEY_DUMMY_HASH
    if not hmac.compare_digest(supplied, expected) or key is None:
        return None
    return key


def phone_number_list(*, tenant: Tenant) -> QuerySet[PhoneNumber]:
    """The numbers that ring ``tenant``, oldest first."""
    return PhoneNumber.objects.filter(tenant=tenant).order_by("created_at", "pk")
