"""Writes on the platform: provisioning tenants, memberships and numbers."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
import structlog
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.hooks import (
    PhoneNumberChanged,
    TenantCreated,
    TenantErasure,
    phone_number_notify,
    tenant_created_notify,
    tenant_erasure_notify,
    tenant_limits_for,
)
from tenants.models import (
    ApiKey,
    AuditEvent,
    BusinessSignup,
    Domain,
    Membership,
    PhoneNumber,
    RoutingState,
    Tenant,
    User,
)
from tenants.permissions import membership_has_role

logger = structlog.get_logger(__name__)

TEMPLATE_SCHEMA: str = settings.TENANT_BASE_SCHEMA
_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
# Host names that belong to the platform, not to a business.
RESERVED_SLUGS = frozenset(
    {
        "www", "api", "admin", "app", "public", "static", "media", "mail", "status", "test",
        "accounts", "account", "login", "signup", "billing", "support", "help", "docs", "metrics", "ws",
    }
)  # fmt: skip
# Schemas a tenant may never be given, whatever the slug: PostgreSQL's own,
# the shared public schema and the template new tenants are cloned from.
RESERVED_SCHEMAS = frozenset({"public", "information_schema", TEMPLATE_SCHEMA})
RESERVED_SCHEMA_PREFIXES = ("pg_",)


def audit_event_record(*, action: str, actor: User | None = None, tenant: Tenant | None = None, **data: Any) -> None:
    AuditEvent.objects.create(action=action, actor=actor, tenant=tenant, data=data)


def tenant_schema_name(slug: str) -> str:
    """The PostgreSQL schema of the tenant whose subdomain is ``slug``."""
    return slug.replace("-", "_")


def tenant_slug_validate(slug: str) -> str:
    """Return the normalised slug or raise ``ValidationError`` saying what is wrong.

    Refuses reserved host names, schema names the platform or PostgreSQL own,
    and any slug whose schema already exists in the database, with or without
    a tenant: a new tenant never adopts a schema it did not make.
    """
    slug = slug.strip().lower()
    if not _SLUG_RE.match(slug):
        raise ValidationError(
            "Use 3 to 40 lower-case letters, digits and hyphens, starting with a letter.", code="invalid_slug"
        )
    schema_name = tenant_schema_name(slug)
    if slug in RESERVED_SLUGS or schema_name in RESERVED_SCHEMAS or schema_name.startswith(RESERVED_SCHEMA_PREFIXES):
        raise ValidationError(f'"{slug}" is reserved; please choose another.', code="reserved_slug")
    if Tenant.objects.filter(schema_name__iexact=schema_name).exists() or _schema_exists(schema_name):
        raise ValidationError(f'"{slug}" is already taken.', code="slug_taken")
    return slug


def tenant_template_ensure() -> Tenant:
    """Create the migrated template schema that new tenants are cloned from.

    Runs every tenant migration once; ``migrate_schemas`` keeps it current
    afterwards because it is a tenant row like any other.
    """
    with transaction.atomic():
        _schema_lock(TEMPLATE_SCHEMA)
        template = Tenant.objects.filter(schema_name=TEMPLATE_SCHEMA).first()
        if template is None:
            template = Tenant(schema_name=TEMPLATE_SCHEMA, name="Template", is_template=True)
            template.save()
            # A template schema without its row (a restored public schema, a
            # flushed test database) may be behind on migrations. It holds no
            # one's data and its name is reserved: make it afresh.
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{TEMPLATE_SCHEMA}" CASCADE')
            _schema_create(template)
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

    Everything, the schema included, is made in one transaction (PostgreSQL
    DDL is transactional), so a failure part-way leaves nothing behind and
    nothing is ever dropped. Creation is serialized per schema name with an
    advisory lock, and the name is checked again under the lock: of two
    sign-ups for one subdomain, the second is refused and the first's schema
    is left alone.
    """
    slug = tenant_slug_validate(slug)
    if not name.strip():
        raise ValidationError("A business name is required.", code="name_required")
    tenant_template_ensure()
    schema_name = tenant_schema_name(slug)
    with transaction.atomic():
        _schema_lock(schema_name)
        # The first check ran before the lock; a concurrent sign-up may have won since.
        tenant_slug_validate(slug)
        tenant = Tenant(schema_name=schema_name, name=name.strip())
        tenant.save()
        _schema_create(tenant)
        Domain.objects.create(domain=f"{slug}.{settings.VOICEDESK_BASE_DOMAIN}", tenant=tenant, is_primary=True)
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
        with tenant_context(tenant):
            tenant_created_notify(TenantCreated(tenant=tenant, agent_defaults=agent_defaults or {}))
        audit_event_record(action="tenant.created", actor=owner, tenant=tenant, schema=schema_name)
    logger.info("tenant_created", tenant=schema_name)
    return tenant


def business_signup_record(*, user: User, name: str, slug: str) -> BusinessSignup:
    """Remember the business ``user`` signed up for; it becomes a tenant once their email is verified.

    The subdomain is checked now, so the form can say at once that it is
    taken, but nothing is reserved: the first verified owner gets it.
    """
    slug = tenant_slug_validate(slug)
    name = name.strip()
    if not name:
        raise ValidationError("A business name is required.", code="name_required")
    with transaction.atomic():
        signup, _ = BusinessSignup.objects.update_or_create(
            user=user, defaults={"name": name, "slug": slug, "error": ""}
        )
        audit_event_record(action="business_signup.recorded", actor=user, name=name, slug=slug)
    return signup


def business_signup_provision(*, user: User, slug: str | None = None) -> Tenant | None:
    """Make the tenant ``user`` signed up for, now that their email is verified.

    ``slug`` replaces the subdomain asked for (after it was taken). Returns
    the tenant, or ``None`` when there is nothing to make or the subdomain is
    no longer free; then the sign-up keeps the reason in ``error`` and waits
    for another subdomain.
    """
    signup = BusinessSignup.objects.filter(user=user).first()
    if signup is None:
        return None
    if not EmailAddress.objects.filter(user=user, verified=True).exists():
        raise PermissionDenied("The business is made once the email address is verified.")
    try:
        tenant = tenant_create(name=signup.name, slug=slug or signup.slug, owner=user)
    except ValidationError as exc:
        signup.slug = slug or signup.slug
        signup.error = " ".join(exc.messages)
        signup.save(update_fields=["slug", "error"])
        logger.info("business_signup_slug_unavailable", user_id=user.pk, code=exc.code)
        return None
    signup.delete()
    return tenant


def _schema_lock(schema_name: str) -> None:
    """Hold a transaction-scoped lock on ``schema_name`` until the caller's transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"tenant-schema:{schema_name}"])


def _schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE lower(nspname) = lower(%s)", [schema_name])
        return cursor.fetchone() is not None


def _schema_create(tenant: Tenant) -> None:
    """Make ``tenant``'s schema, which must not exist yet, in the current transaction."""
    if _schema_exists(tenant.schema_name):
        raise ValidationError(f'"{tenant.schema_name}" is already taken.', code="slug_taken")
    tenant.create_schema(check_if_exists=False, verbosity=0)


def seat_limit_check(*, tenant: Tenant) -> None:
    """Raise ``ValidationError`` (``seat_limit``) when every staff seat of ``tenant``'s plan is taken."""
    limit = tenant_limits_for(tenant).max_seats
    if limit is not None and Membership.objects.filter(tenant=tenant).count() >= limit:
        raise ValidationError(
            f"Your plan includes {limit} seat{'s' if limit != 1 else ''} and all are in use. "
            "Remove a member or choose a larger plan to add another.",
            code="seat_limit",
        )


def number_limit_check(*, tenant: Tenant) -> None:
    """Raise ``ValidationError`` (``number_limit``) when ``tenant`` has as many numbers as its plan allows."""
    limit = tenant_limits_for(tenant).max_numbers
    if limit is not None and PhoneNumber.objects.filter(tenant=tenant).count() >= limit:
        raise ValidationError(
            f"Your plan includes {limit} phone number{'s' if limit != 1 else ''} and all are in use. "
            "Remove a number or choose a larger plan to add another.",
            code="number_limit",
        )


def _tenant_lock(tenant: Tenant) -> None:
    """Serialize seat and number changes of ``tenant`` until the caller's transaction ends."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()


def membership_add(*, tenant: Tenant, user: User, role: str, actor: User | None) -> Membership:
    """Give ``user`` a ``role`` in ``tenant``; a new member takes a seat of the plan (``seat_limit`` when none is free).

    Changing the role of an existing member takes no new seat.
    """
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}.", code="invalid_role")
    with transaction.atomic():
        _tenant_lock(tenant)
        if not Membership.objects.filter(user=user, tenant=tenant).exists():
            seat_limit_check(tenant=tenant)
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
    """Map a dialled number to ``tenant``. A number belongs to exactly one tenant.

    A new number must fit the plan's number limit (``number_limit``); registering one the tenant has is a no-op.
    """
    e164 = phone_number_normalize(number)
    existing = PhoneNumber.objects.filter(e164=e164).select_related("tenant").first()
    if existing is not None:
        if existing.tenant_id == tenant.pk:
            return existing
        raise ValidationError(f"{e164} already belongs to another business.", code="number_taken")
    try:
        with transaction.atomic():
            _tenant_lock(tenant)
            number_limit_check(tenant=tenant)
            phone = PhoneNumber.objects.create(e164=e164, tenant=tenant, label=label)
            audit_event_record(action="phone_number.registered", actor=actor, tenant=tenant, number=e164)
            phone_number_notify(
                PhoneNumberChanged(action="registered", tenant=tenant, number_id=phone.pk, e164=phone.e164)
            )
    except IntegrityError as exc:
        raise ValidationError(f"{e164} already belongs to another business.", code="number_taken") from exc
    return phone


def phone_number_remove(*, tenant: Tenant, number_id: int, actor: User | None = None) -> PhoneNumber:
    """Stop routing a number to ``tenant``; ``PhoneNumber.DoesNotExist`` when the tenant has no such number.

    The registered hooks hear of it in the same transaction (``calls`` then
    deletes the number's dispatch rule at the telephony platform).
    """
    with transaction.atomic():
        phone = PhoneNumber.objects.select_for_update().get(pk=number_id, tenant=tenant)
        audit_event_record(action="phone_number.removed", actor=actor, tenant=tenant, number=phone.e164)
        event = PhoneNumberChanged(
            action="removed", tenant=tenant, number_id=phone.pk, e164=phone.e164, routing_ref=phone.routing_ref
        )
        phone.delete()
        phone_number_notify(event)
    return phone


def phone_number_routing_set(*, number_id: int, state: str, ref: str | None = None, error: str = "") -> bool:
    """Record how the telephony platform routes a number (``RoutingState``), its reference there and any error.

    Returns False when the number is gone (removed meanwhile). ``ref=None`` keeps the stored reference.
    """
    if state not in RoutingState.values:
        raise ValueError(f"Unknown routing state {state!r}")
    changes: dict[str, Any] = {"routing_state": state, "routing_error": error[:300]}
    if ref is not None:
        changes["routing_ref"] = ref[:64]
    return PhoneNumber.objects.filter(pk=number_id).update(**changes) == 1


# Keys look like ``vd_<8 hex>_<43 url-safe characters>``: the prefix finds
# the row, the secret (256 random bits) is stored as its SHA-256 only. A
# fast hash is enough for a secret this long; a slow one would cost every
# API request.
API_KEY_PREFIX = "vd"
API_KEY_PREFIX_BYTES = 4
API_KEY_SECRET_BYTES = 32
API_KEY_NAME_MAX_LENGTH = 100


def _api_key_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, tenant: Tenant, actor: User, name: str) -> tuple[ApiKey, str]:
    """Make a named API key for ``tenant``; return it and the full key, which is never stored.

    Only admins and owners make keys: a key acts with its creator's rights,
    and stops working when the creator is no longer an admin or owner.
    """
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the key a name, e.g. the system that will use it.", code="name_required")
    if len(name) > API_KEY_NAME_MAX_LENGTH:
        raise ValidationError(f"Use at most {API_KEY_NAME_MAX_LENGTH} characters for the name.", code="name_too_long")
    membership = Membership.objects.filter(user=actor, tenant=tenant).first()
    if not membership_has_role(membership, Membership.Role.ADMIN):
        raise PermissionDenied("Only admins and owners can make API keys.")
    for _attempt in range(5):
        # 32 random bits of prefix: a clash is rare, and the unique index turns it into a retry.
        prefix = secrets.token_hex(API_KEY_PREFIX_BYTES)
        secret = secrets.token_urlsafe(API_KEY_SECRET_BYTES)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    tenant=tenant, name=name, prefix=prefix, hashed=_api_key_secret_hash(secret), created_by=actor
                )
                audit_event_record(action="api_key.created", actor=actor, tenant=tenant, name=name, prefix=prefix)
        except IntegrityError:
            continue
        logger.info("api_key_created", tenant=tenant.schema_name, prefix=prefix)
        return key, f"{API_KEY_PREFIX}_{prefix}_{secret}"
    raise RuntimeError("Could not find a free API key prefix.")


def api_key_revoke(*, tenant: Tenant, key_id: int, actor: User | None) -> ApiKey:
    """Stop ``key_id`` working at once. Revoking a revoked key changes nothing.

    Raises ``ApiKey.DoesNotExist`` for a key of another tenant, so callers answer 404.
    """
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key_id, tenant=tenant)
        if key.revoked_at is not None:
            return key
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_event_record(action="api_key.revoked", actor=actor, tenant=tenant, name=key.name, prefix=key.prefix)
    logger.info("api_key_revoked", tenant=tenant.schema_name, prefix=key.prefix)
    return key


API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def api_key_used_mark(*, key: ApiKey, now: datetime | None = None) -> None:
    """Record that ``key`` was used, at most once a minute: a busy integration must not write on every request.

    The conditional update also keeps concurrent requests from writing twice.
    """
    now = now or timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < API_KEY_TOUCH_INTERVAL:
        return
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - API_KEY_TOUCH_INTERVAL)
    ).update(last_used_at=now)
    key.last_used_at = now


# -- Erasure -------------------------------------------------------------------------------


@dataclass
class TenantErasureReport:
    """What ``tenant_erase`` deleted (or, in a dry run, would delete), what it kept, and what stops it."""

    schema_name: str
    dry_run: bool
    counts: dict[str, int]
    kept: dict[str, str]
    blockers: list[str]
    erased: bool = False


def _erasable_users(tenant: Tenant) -> list[int]:
    """The people whose only business is ``tenant``: their accounts go with it.

    Platform staff, and anyone also in another business or signing up for a
    new one, keep their account (only their membership here goes).
    """
    members = Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True)
    elsewhere = Membership.objects.exclude(tenant=tenant).values_list("user_id", flat=True)
    return list(
        User.objects.filter(pk__in=members)
        .exclude(pk__in=elsewhere)
        .exclude(Q(is_staff=True) | Q(is_superuser=True))
        .exclude(business_signup__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _erasure_counts(tenant: Tenant) -> dict[str, int]:
    return {
        "domains": Domain.objects.filter(tenant=tenant).count(),
        "memberships": Membership.objects.filter(tenant=tenant).count(),
        "users": len(_erasable_users(tenant)),
        "phone_numbers": PhoneNumber.objects.filter(tenant=tenant).count(),
        "api_keys": ApiKey.objects.filter(tenant=tenant).count(),
        "audit_events": AuditEvent.objects.filter(tenant=tenant).count(),
        "schema": int(_schema_exists(tenant.schema_name)),
    }


def tenant_erase(*, tenant: Tenant, actor: User, dry_run: bool = True) -> TenantErasureReport:
    """Erase a business and everything of it: its schema, its files and its rows in the public schema.

    Only a superuser may erase. A dry run (the default) changes nothing and
    reports what would go. The apps above say what they hold outside the
    schema (``tenants.hooks.tenant_erasure_hook_register``): ``calls`` the
    recordings on disk, ``billing`` the usage records and the subscription,
    and what stops the erasure (a Stripe subscription still running, minutes
    not yet reported to Stripe); anything in the way refuses the whole
    erasure before anything is deleted. Then, in one transaction: the apps'
    parts, the numbers (through ``phone_number_remove``, so their telephony
    routes go too), API keys, memberships, the accounts of people who
    belonged to this business alone, domains, the tenant's audit rows, the
    tenant row and ``DROP SCHEMA ... CASCADE``. One audit row without a tenant
    (``tenant.erased``) keeps the schema name, the counts and the billing
    identifiers an accountant needs to find the invoices at Stripe.
    """
    if not actor.is_active or not actor.is_superuser:
        raise PermissionDenied("Only the platform's owner may erase a business.")
    schema_name = tenant.schema_name
    if tenant.is_template or schema_name in RESERVED_SCHEMAS or schema_name.startswith(RESERVED_SCHEMA_PREFIXES):
        raise ValidationError(f'"{schema_name}" is not a business and cannot be erased.', code="not_a_business")
    parts = tenant_erasure_notify(TenantErasure(tenant=tenant, dry_run=True))
    report = TenantErasureReport(
        schema_name=schema_name,
        dry_run=dry_run,
        counts=_erasure_counts(tenant) | {k: v for part in parts for k, v in part.counts.items()},
        kept={k: v for part in parts for k, v in part.kept.items()},
        blockers=[blocker for part in parts for blocker in part.blockers],
    )
    if dry_run or report.blockers:
        return report
    tenant_id = tenant.pk
    with transaction.atomic():
        _schema_lock(schema_name)
        _tenant_lock(tenant)
        for part in tenant_erasure_notify(TenantErasure(tenant=tenant, dry_run=False)):
            report.counts.update(part.counts)
        for number_id in PhoneNumber.objects.filter(tenant=tenant).values_list("pk", flat=True):
            phone_number_remove(tenant=tenant, number_id=number_id, actor=actor)
        users = _erasable_users(tenant)
        ApiKey.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(tenant=tenant).delete()
        User.objects.filter(pk__in=users).delete()
        Domain.objects.filter(tenant=tenant).delete()
        AuditEvent.objects.filter(tenant=tenant).delete()
        # The row only: the schema is dropped here, by name, after checking it is this tenant's.
        Tenant.objects.filter(pk=tenant_id).delete()
        with connection.cursor() as cursor:
            # Deferred key checks of rows written earlier in an enclosing
            # transaction would make PostgreSQL refuse to drop their tables.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema_name)} CASCADE")
        audit_event_record(
            action="tenant.erased",
            actor=actor,
            tenant=None,
            schema=schema_name,
            tenant_id=tenant_id,
            counts=report.counts,
            kept=report.kept,
        )
    report.erased = True
    logger.warning("tenant_erased", tenant=schema_name, counts=report.counts)
    return report
