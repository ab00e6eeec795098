"""The platform admin (``admin.site`` on the public host): the SaaS owner's view of every business.

Only platform staff get in (Django's default: ``is_staff``); tenant members
are never staff, and have their own admin on their own host
(``voicedesk.web.admin_site``). Provisioning and membership changes go through
``tenants.services`` so the platform audit log stays complete.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.models import ApiKey, AuditEvent, Domain, Membership, PhoneNumber, Tenant, User
from tenants.permissions import request_actor
from tenants.services import (
    api_key_revoke,
    audit_event_record,
    membership_add,
    number_limit_check,
    phone_number_normalize,
    phone_number_register,
    phone_number_remove,
    seat_limit_check,
)


class ReadOnlyAdminMixin:
    """Rows written by the system only: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("tenant", "role", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_superuser", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = (MembershipInline,)


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class PhoneNumberInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0
    fields = ("e164", "label", "created_at")
    readonly_fields = ("e164", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # New numbers are validated and audited by the phone number admin.
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Businesses are provisioned by sign-up or ``manage.py tenant_create`` (schema, domain, owner
    and agent together), and never dropped from a form; name and domains can be changed here."""

    list_display = ("name", "schema_name", "primary_domain", "members", "is_template", "created_at")
    list_filter = ("is_template",)
    search_fields = ("name", "schema_name", "domains__domain")
    readonly_fields = ("schema_name", "is_template", "created_at")
    fields = ("name", "schema_name", "is_template", "created_at")
    inlines = (DomainInline, PhoneNumberInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).prefetch_related("domains", "memberships")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False

    @admin.display(description="Domain")
    def primary_domain(self, obj: Tenant) -> str:
        domains = list(obj.domains.all())
        primary = next((d for d in domains if d.is_primary), domains[0] if domains else None)
        return primary.domain if primary is not None else "-"

    @admin.display(description="Members")
    def members(self, obj: Tenant) -> int:
        return len(obj.memberships.all())


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    list_filter = ("is_primary",)
    search_fields = ("domain", "tenant__name")
    list_select_related = ("tenant",)


class MembershipAddForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "tenant", "role")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant, user = cleaned.get("tenant"), cleaned.get("user")
        if tenant is not None and user is not None and not Membership.objects.filter(tenant=tenant, user=user).exists():
            # The plan's seat limit, said on the form; the service checks it again under a lock.
            seat_limit_check(tenant=tenant)
        return cleaned


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__email", "tenant__name")
    list_select_related = ("user", "tenant")
    raw_id_fields = ("user",)
    fields = ("user", "tenant", "role")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        # A membership is one user in one business; a different pair is a different membership.
        return ("user", "tenant") if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Membership | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = MembershipAddForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        saved = membership_add(tenant=obj.tenant, user=obj.user, role=obj.role, actor=request_actor(request))
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        self.delete_queryset(request, Membership.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "tenant"):
            audit_event_record(
                action="membership.removed",
                actor=request_actor(request),
                tenant=membership.tenant,
                user=membership.user.email,
                role=membership.role,
            )
            membership.delete()


class PhoneNumberAddForm(forms.ModelForm):
    class Meta:
        model = PhoneNumber
        fields = ("e164", "tenant", "label")

    def clean_e164(self) -> str:
        # Normalised before the unique check, so "+1 555 010 0100" finds "+15550100100".
        return phone_number_normalize(self.cleaned_data.get("e164", ""))

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("tenant") is not None:
            # The plan's number limit, said on the form; the service checks it again under a lock.
            number_limit_check(tenant=cleaned["tenant"])
        return cleaned


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ("e164", "tenant", "label", "routing_state", "created_at")
    list_filter = ("tenant",)
    search_fields = ("e164", "tenant__name", "label")
    list_select_related = ("tenant",)
    fields = ("e164", "tenant", "label", "routing_state", "routing_ref", "routing_error")

    def get_readonly_fields(self, request: HttpRequest, obj: PhoneNumber | None = None) -> Any:
        # Moving a number to another business is a removal and a new registration;
        # the routing fields are written by provisioning only.
        routing = ("routing_state", "routing_ref", "routing_error")
        return ("e164", "tenant", *routing) if obj is not None else routing

    def save_model(self, request: HttpRequest, obj: PhoneNumber, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["label"])
            return
        registered = phone_number_register(
            tenant=obj.tenant, number=obj.e164, label=obj.label, actor=request_actor(request)
        )
        obj.pk = registered.pk
        obj.e164 = registered.e164

    def get_form(
        self, request: HttpRequest, obj: PhoneNumber | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = PhoneNumberAddForm
        return super().get_form(request, obj, change, **kwargs)

    def delete_model(self, request: HttpRequest, obj: PhoneNumber) -> None:
        self.delete_queryset(request, PhoneNumber.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PhoneNumber]) -> None:
        for phone in queryset.select_related("tenant"):
            phone_number_remove(tenant=phone.tenant, number_id=phone.pk, actor=request_actor(request))


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "tenant", "actor")
    list_filter = ("action", "tenant")
    search_fields = ("action", "actor__email", "tenant__name")
    list_select_related = ("tenant", "actor")
    date_hierarchy = "created_at"
    fields = ("created_at", "action", "tenant", "actor", "data")
    readonly_fields = fields


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Keys are made by the business's admins; the platform can only see and revoke them."""

    list_display = ("name", "prefix", "tenant", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    search_fields = ("name", "prefix", "tenant__name")
    list_select_related = ("tenant", "created_by")
    fields = ("name", "prefix", "tenant", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_selected",)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True).select_related("tenant"))
        for key in keys:
            api_key_revoke(tenant=key.tenant, key_id=key.pk, actor=request_actor(request))
        self.message_user(request, f"Revoked {len(keys)} key{'s' if len(keys) != 1 else ''}.", messages.SUCCESS)
