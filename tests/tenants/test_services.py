import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from calls.models import AgentConfig, FaqEntry
from calls.services import DEFAULT_FAQS
from tenants.models import AuditEvent, Domain, Membership, PhoneNumber, Tenant, User
from tenants.services import phone_number_normalize, phone_number_register, tenant_create, tenant_template_ensure


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user(email="new-owner@example.com", password="x" * 12)


def test_tenant_create_provisions_schema_domain_owner_and_agent(owner: User) -> None:
    tenant = tenant_create(name="  Gamma Heating ", slug="gamma-heat", owner=owner)

    assert tenant.schema_name == "gamma_heat"
    assert tenant.name == "Gamma Heating"
    assert schema_exists("gamma_heat")
    assert list(Domain.objects.filter(tenant=tenant).values_list("domain", "is_primary")) == [
        ("gamma-heat.localhost", True)
    ]
    assert list(Membership.objects.filter(tenant=tenant).values_list("user__email", "role")) == [
        ("new-owner@example.com", "owner")
    ]
    assert AuditEvent.objects.filter(action="tenant.created", tenant=tenant, actor=owner).count() == 1
    with tenant_context(tenant):
        config = AgentConfig.objects.get()
        assert config.business_name == "Gamma Heating"
        assert config.collect == ["name", "callback_number", "reason"]
        assert list(FaqEntry.objects.values_list("question", "answer")) == list(DEFAULT_FAQS)
    assert connection.schema_name == "public"


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("ab", "invalid_slug"),
        ("Has Space", "invalid_slug"),
        ("9lives", "invalid_slug"),
        ("www", "reserved_slug"),
        ("alpha", "slug_taken"),
        ("pg_foo", "invalid_slug"),
        ("pg-toast", "reserved_slug"),
        ("pg-catalog", "reserved_slug"),
        ("information-schema", "reserved_slug"),
        ("tenant-template", "reserved_slug"),
        ("public", "reserved_slug"),
        ("admin", "reserved_slug"),
        ("api", "reserved_slug"),
        ("static", "reserved_slug"),
        ("media", "reserved_slug"),
    ],
)
def test_tenant_create_rejects_bad_slugs_and_creates_nothing(owner: User, slug: str, code: str) -> None:
    before = (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count())
    with pytest.raises(ValidationError) as excinfo:
        tenant_create(name="Whatever", slug=slug, owner=owner)
    assert excinfo.value.code == code
    assert (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count()) == before


def test_tenant_create_never_touches_postgresql_own_schemas(owner: User) -> None:
    with pytest.raises(ValidationError) as excinfo:
        tenant_create(name="Info", slug="information-schema", owner=owner)
    assert excinfo.value.code == "reserved_slug"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'tenants_tenant'")
        assert cursor.fetchone() == (1,)


def test_tenant_create_refuses_a_schema_that_exists_without_a_tenant_and_leaves_it_alone(owner: User) -> None:
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "orphan_co"')
        cursor.execute('CREATE TABLE "orphan_co"."keep_me" (id int)')
        cursor.execute('INSERT INTO "orphan_co"."keep_me" VALUES (7)')
    before = (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count())

    with pytest.raises(ValidationError) as excinfo:
        tenant_create(name="Orphan Co", slug="orphan-co", owner=owner)

    assert excinfo.value.code == "slug_taken"
    assert (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count()) == before
    with connection.cursor() as cursor:
        cursor.execute('SELECT id FROM "orphan_co"."keep_me"')
        assert cursor.fetchall() == [(7,)]


def test_tenant_create_failing_part_way_leaves_no_schema_and_no_rows(owner: User) -> None:
    before = (Tenant.objects.count(), Domain.objects.count(), Membership.objects.count(), AuditEvent.objects.count())

    # The agent defaults are applied after the schema is made: an unknown field fails there.
    with pytest.raises(ValueError, match="Unknown fields to collect"):
        tenant_create(name="Half Made", slug="half-made", owner=owner, agent_defaults={"collect": ["shoe_size"]})

    assert not schema_exists("half_made")
    assert (
        Tenant.objects.count(),
        Domain.objects.count(),
        Membership.objects.count(),
        AuditEvent.objects.count(),
    ) == before
    assert connection.schema_name == "public"


def test_tenant_create_requires_a_name(owner: User) -> None:
    with pytest.raises(ValidationError, match="business name is required"):
        tenant_create(name="  ", slug="nameless", owner=owner)
    assert not Tenant.objects.filter(schema_name="nameless").exists()
    assert not schema_exists("nameless")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("+1 555 010 0100", "+15550100100"), ("(555) 201-3344", "+15552013344"), ("+44 20 7946 0958", "+442079460958")],
)
def test_phone_number_normalize(raw: str, e164: str) -> None:
    assert phone_number_normalize(raw) == e164


@pytest.mark.parametrize("raw", ["", "hello", "123", "+1 555"])
def test_phone_number_normalize_rejects_non_numbers(raw: str) -> None:
    with pytest.raises(ValidationError):
        phone_number_normalize(raw)


def test_phone_number_register_maps_one_number_to_one_tenant(tenant_a, tenant_b) -> None:
    phone = phone_number_register(tenant=tenant_a.tenant, number="(555) 777-0001", label="Main line")
    assert (phone.e164, phone.tenant_id, phone.label) == ("+15557770001", tenant_a.tenant.pk, "Main line")
    # Registering it again for the same tenant is a no-op; for another, an error.
    assert phone_number_register(tenant=tenant_a.tenant, number="+15557770001").pk == phone.pk
    with pytest.raises(ValidationError, match="already belongs to another business"):
        phone_number_register(tenant=tenant_b.tenant, number="+1 555 777 0001")
    assert list(PhoneNumber.objects.filter(e164="+15557770001").values_list("tenant__schema_name", flat=True)) == [
        "alpha"
    ]


def test_a_template_schema_left_without_its_row_is_made_afresh(owner: User) -> None:
    Tenant.objects.filter(schema_name="tenant_template").delete()  # the schema stays behind
    with connection.cursor() as cursor:
        cursor.execute('CREATE TABLE "tenant_template"."leftover" (id int)')

    template = tenant_template_ensure()

    assert (template.is_template, schema_exists("tenant_template")) == (True, True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_template' AND tablename = 'leftover'")
        assert cursor.fetchone() == (0,)
    tenant = tenant_create(name="After Restore", slug="after-restore", owner=owner)
    with tenant_context(tenant):
        assert AgentConfig.objects.get().business_name == "After Restore"
