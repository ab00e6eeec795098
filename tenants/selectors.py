"""Reads on the platform. Every read takes the acting user or the tenant."""

from __future__ import annotations

import phonenumbers
from django.db.models import QuerySet

from tenants.models import Membership, PhoneNumber, Tenant, User


def tenant_membership_get(*, user: User, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return Membership.objects.filter(user=user, tenant=tenant).first()


def tenant_list_for_user(*, user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user, is_template=False).prefetch_related("domains").order_by("name")


def tenant_for_phone_number(*, number: str) -> Tenant | None:
    """The tenant a dialled number belongs to, or ``None`` for an unknown or invalid number."""
    try:
        e164 = phonenumbers.format_number(phonenumbers.parse(number, "US"), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return None
    phone = PhoneNumber.objects.select_related("tenant").filter(e164=e164).first()
    return phone.tenant if phone is not None else None
