"""The business's phone number page: admins add numbers they own, within the plan's limit."""

from __future__ import annotations

from django.test import Client

from billing.models import Plan
from tenants.models import AuditEvent, PhoneNumber
from tests.factories import MembershipFactory, SubscriptionFactory


def _numbers(tenant) -> list[str]:
    return list(PhoneNumber.objects.filter(tenant=tenant).order_by("pk").values_list("e164", flat=True))


def test_the_page_lists_the_numbers_and_the_plans_limit(client_a, tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, plan=Plan.objects.get(code="growth"))
    response = client_a.get("/settings/numbers/")
    assert response.status_code == 200
    assert [p.e164 for p in response.context["numbers"]] == ["+15550001001"]
    assert "Your plan includes 3 numbers; 1 in use." in response.content.decode()


def test_an_admin_adds_a_number_in_e164(client_a, tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant, plan=Plan.objects.get(code="growth"))
    response = client_a.post("/settings/numbers/", {"number": "(555) 777-0002", "label": "Night line"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Calls to +15557770002 now reach your receptionist."]
    assert _numbers(tenant_a.tenant) == ["+15550001001", "+15557770002"]
    assert list(
        AuditEvent.objects.filter(action="phone_number.registered", data__number="+15557770002").values_list(
            "actor", "tenant"
        )
    ) == [(tenant_a.owner.pk, tenant_a.tenant.pk)]


def test_a_number_beyond_the_plan_is_refused_with_a_clear_error_and_nothing_changes(client_a, tenant_a) -> None:
    SubscriptionFactory(tenant=tenant_a.tenant)  # Starter: one number, in use
    audits = AuditEvent.objects.count()
    response = client_a.post("/settings/numbers/", {"number": "+15557770003"})
    assert response.status_code == 400
    assert response.context["error"] == (
        "Your plan includes 1 phone number and all are in use. Remove a number or choose a larger plan to add another."
    )
    assert _numbers(tenant_a.tenant) == ["+15550001001"]
    assert AuditEvent.objects.count() == audits


def test_another_business_number_or_garbage_is_refused(client_a, tenant_a, tenant_b) -> None:
    taken = client_a.post("/settings/numbers/", {"number": "+15550001002"})
    garbage = client_a.post("/settings/numbers/", {"number": "call me"})
    assert (taken.status_code, taken.context["error"]) == (400, "+15550001002 already belongs to another business.")
    assert (garbage.status_code, garbage.context["error"]) == (400, '"call me" is not a phone number.')
    assert _numbers(tenant_a.tenant) == ["+15550001001"]
    assert _numbers(tenant_b.tenant) == ["+15550001002"]


def test_agents_and_outsiders_get_a_404_and_add_nothing(tenant_a, tenant_b) -> None:
    agent = Client(HTTP_HOST=tenant_a.host)
    agent.force_login(MembershipFactory(tenant=tenant_a.tenant, role="agent").user)
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)
    for client in (agent, outsider):
        assert client.post("/settings/numbers/", {"number": "+15557770004"}).status_code == 404
        assert client.get("/settings/numbers/").status_code == 404
    assert _numbers(tenant_a.tenant) == ["+15550001001"]
