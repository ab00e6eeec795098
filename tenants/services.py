"""Writes on the platform: provisioning tenants, memberships and numbers."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django_tenants.utils import schema_context, tenant_context

from tenants.models import AuditEvent, Domain, Membership, PhoneNumber, Tenant, User

logger = structlog.get_logger(__name__)

TEMPLATE_SCHEMA: str = settings.TENANT_BASE_SCHEMA
_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "app", "public", "static", "media", "mail", "status", "test", TEMPLATE_SCHEMA}
)


def audit_event_record(*, action: str, actor: User | None = None, tenant: Tenant | None = None, **data: Any) -> None:
    AuditEvent.objects.create(action=action, actor=actor, tenant=tenant, data=data)


def tenant_slug_validate(slug: str) -> str:
    """Return the normalised slug or raise ``ValidationError`` saying what is wrong."""
    slug = slug.strip().lower()
    if not _SLUG_RE.match(slug):
        raise ValidationError(
            "Use 3 to 40 lower-case letters, digits and hyphens, starting with a letter.", code="invalid_slug"
        )
    if slug in RESERVED_SLUGS or slug.startswith("pg_"):
        raise ValidationError(f'"{slug}" is reserved; please choose another.', code="reserved_slug")
    if Tenant.objects.filter(schema_name=slug.replace("-", "_")).exists():
        raise ValidationError(f'"{slug}" is already taken.', code="slug_taken")
    return slug


def tenant_template_ensure() -> Tenant:
    """Create the migrated template schema that new tenants are cloned from.

    Runs every tenant migration once; ``migrate_schemas`` keeps it current
    afterwards because it is a tenant row like any other.
    """
    template = Tenant.objects.filter(schema_name=TEMPLATE_SCHEMA).first()
    if template is None:
        template = Tenant(schema_name=TEMPLATE_SCHEMA, name="Template", is_template=True)
        template.save(verbosity=0)
        logger.info("tenant_template_created", schema=TEMPLATE_SCHEMA)
    return template


def tenant_create(
    *,
    name: str,
    slug: str,
    owner: User,
    agent_defaults: dict[str, Any] | None = None,
) -> Tenant:
    """Provision a tenant: schema (cloned from the template), domain, owner and agent.

    The schema is made before the public rows commit, so a failure part-way
    drops the half-made schema and leaves nothing behind.
    """
    from calls.services import agent_config_create_default

    slug = tenant_slug_validate(slug)
    if not name.strip():
        raise ValidationError("A business name is required.", code="name_required")
    tenant_template_ensure()
    schema_name = slug.replace("-", "_")
    tenant = Tenant(schema_name=schema_name, name=name.strip())
    try:
        with transaction.atomic():
            tenant.save(verbosity=0)
            Domain.objects.create(domain=f"{slug}.{settings.VOICEDESK_BASE_DOMAIN}", tenant=tenant, is_primary=True)
            Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
            with tenant_context(tenant):
                agent_config_create_default(business_name=tenant.name, **(agent_defaults or {}))
            audit_event_record(action="tenant.created", actor=owner, tenant=tenant, schema=schema_name)
    except Exception:
        if tenant.pk is not None or _schema_exists(schema_name):
            _schema_drop(schema_name)
        raise
    logger.info("tenant_created", tenant=schema_name)
    return tenant


def _schema_exists(schema_name: str) -> bool:
    from django_tenants.utils import schema_exists

    return bool(schema_exists(schema_name))


def _schema_drop(schema_name: str) -> None:
    from django.db import connection

    with schema_context("public"), connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')


def membership_add(*, tenant: Tenant, user: User, role: str, actor: User | None) -> Membership:
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}.", code="invalid_role")
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        audit_event_record(action="membership.added", actor=actor, tenant=tenant, user=user.email, role=role)
    return membership


def phone_number_normalize(raw: str, *, region: str = "US") -> str:
    """Return ``raw`` as E.164, or raise ``ValidationError`` if it is not a valid number."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f'"{raw}" is not a phone number.', code="invalid_number") from exc
    # Fictional 555-01xx style numbers are "possible" but not "valid"; the
    # registry accepts any possible number so test lines and demos work.
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError(f'"{raw}" is not a possible phone number.', code="invalid_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_number_register(*, tenant: Tenant, number: str, label: str = "", actor: User | None = None) -> PhoneNumber:
    """Map a dialled number to ``tenant``. A number belongs to exactly one tenant."""
    e164 = phone_number_normalize(number)
    existing = PhoneNumber.objects.filter(e164=e164).select_related("tenant").first()
    if existing is not None:
        if existing.tenant_id == tenant.pk:
            return existing
        raise ValidationError(f"{e164} already belongs to another business.", code="number_taken")
    try:
        with transaction.atomic():
            phone = PhoneNumber.objects.create(e164=e164, tenant=tenant, label=label)
            audit_event_record(action="phone_number.registered", actor=actor, tenant=tenant, number=e164)
    except IntegrityError as exc:
        raise ValidationError(f"{e164} already belongs to another business.", code="number_taken") from exc
    return phone
