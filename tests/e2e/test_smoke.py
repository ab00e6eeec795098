import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import Page, expect

from calls.simulator import ServerStack
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]


def test_owner_signs_in_on_the_tenant_host(web_stack: ServerStack, page: Page, tenant_a) -> None:
    EmailAddress.objects.update_or_create(
        user=tenant_a.owner, email=tenant_a.owner.email, defaults={"verified": True, "primary": True}
    )
    page.goto(f"http://{tenant_a.host}:{web_stack.port}/")

    page.get_by_label("Email").fill(tenant_a.owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha Plumbing")
    expect(page.get_by_role("navigation", name="Help desk").get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page"
    )
