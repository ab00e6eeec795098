import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]


def test_owner_signs_in_on_the_tenant_host(signed_in: str, page: Page) -> None:
    assert page.url == f"{signed_in}/"
    expect(page.get_by_text("Successfully signed in as owner@alpha.test.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Help desk").get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page"
    )
