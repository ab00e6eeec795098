"""Public-schema models: users, tenants, their domains, memberships and numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class EmailUserManager(UserManager["User"]):
    """Users sign in with their email address; there is no username."""

    def _create_email_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_email_user(email, password, **extra)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_email_user(email, password, **extra)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[EmailUserManager] = EmailUserManager()

    def __str__(self) -> str:
        return self.email


class Tenant(TenantMixin):
    """A business that uses VoiceDesk. ``schema_name`` doubles as its subdomain."""

    name: models.CharField[str, str] = models.CharField(max_length=200)
    # The migrated, empty schema new tenants are cloned from. It has no domain,
    # so no request can ever resolve to it.
    is_template: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(auto_now_add=True)

    # Schemas are made by ``tenants.services`` inside the provisioning
    # transaction, after checking under a lock that the name is free; the
    # library's own path would adopt an existing schema and drop it on failure.
    auto_create_schema = False

    def __str__(self) -> str:
        return f"{self.name} ({self.schema_name})"


class Domain(DomainMixin):
    pass


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        AGENT = "agent", "Agent"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.tenant.schema_name}"


class RoutingState(models.TextChoices):
    PENDING = "pending", "Being set up"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Set-up failed"


class PhoneNumber(models.Model):
    """A dialled number (E.164); an incoming call finds its tenant through it."""

    e164 = models.CharField("number", max_length=16, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="phone_numbers")
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Where the telephony platform routes the number (a LiveKit SIP dispatch
    # rule): empty when no platform needs set-up, else pending until it is done.
    routing_state = models.CharField(max_length=10, choices=RoutingState.choices, blank=True, default="")
    routing_ref = models.CharField(max_length=64, blank=True, default="")
    routing_error = models.CharField(max_length=300, blank=True, default="")

    def __str__(self) -> str:
        return self.e164


class AuditEvent(models.Model):
    """One row per platform-level state change (tenant created, number added...)."""

    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class ApiKey(models.Model):
    """A named key for a tenant's REST API. Only a hash of the secret is stored.

    The full key (``vd_<prefix>_<secret>``) is shown once, when it is made;
    ``prefix`` finds the row and is safe to show in lists.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64, help_text="SHA-256 of the secret, hex.")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="api_key_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class BusinessSignup(models.Model):
    """A business asked for at sign-up, made into a tenant once its owner's email is verified.

    Nothing is reserved meanwhile: unverified sign-ups cannot squat
    subdomains. If someone verified first took the subdomain, ``error`` says
    so and the owner picks another.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="business_signup")
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=40)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.slug}) for {self.user}"
