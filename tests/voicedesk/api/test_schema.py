"""The OpenAPI schema and the Swagger UI page."""

import json

import yaml
from django.core.management import call_command
from django.test import Client
from drf_spectacular.drainage import GENERATOR_STATS

from tests.factories import MembershipFactory

API_PATHS = sorted(
    [
        "/api/agent-config/",
        "/api/callbacks/",
        "/api/callbacks/{id}/",
        "/api/callbacks/{id}/outcome/",
        "/api/callbacks/next/",
        "/api/calls/",
        "/api/calls/{id}/",
        "/api/calls/export.csv",
        "/api/faq-entries/",
        "/api/faq-entries/{id}/",
        "/api/tickets/",
        "/api/tickets/{id}/",
        "/api/tickets/{id}/changes/",
        "/api/tickets/{id}/notes/",
        "/api/tickets/export.csv",
    ]
)


def test_the_schema_generates_validates_and_has_no_warnings(tmp_path) -> None:
    GENERATOR_STATS.reset()
    target = tmp_path / "schema.yaml"

    # Raises on any warning or error, or if the schema is not valid OpenAPI 3.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    assert sorted(schema["paths"]) == API_PATHS
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from Settings → API keys: `Authorization: Bearer vd_...`.",
    }
    assert sorted(schema["paths"]["/api/tickets/{id}/"]) == ["get", "patch"]
    assert sorted(schema["paths"]["/api/faq-entries/{id}/"]) == ["delete", "get", "patch"]
    export = schema["paths"]["/api/tickets/export.csv"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]
    assert {p["name"] for p in export["parameters"]} >= {"status", "priority", "created_after", "search", "ordering"}


def test_members_fetch_the_schema(client_a) -> None:
    response = client_a.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})

    assert response.status_code == 200
    assert sorted(json.loads(response.content)["paths"]) == API_PATHS


def test_the_schema_is_not_public(tenant_a, tenant_b) -> None:
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)

    assert Client(HTTP_HOST=tenant_a.host).get("/api/schema/").status_code == 401
    assert outsider.get("/api/schema/").status_code == 404


def test_the_docs_page_serves_swagger_ui_from_our_own_static_files(tenant_a) -> None:
    agent = MembershipFactory(tenant=tenant_a.tenant, role="agent").user
    client = Client(HTTP_HOST=tenant_a.host)
    client.force_login(agent)

    response = client.get("/api/docs/")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<script src="/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"></script>' in html
    assert '"/api/schema/"' in html
    assert "cdn" not in html.lower()


def test_the_docs_page_asks_strangers_to_sign_in_and_hides_from_outsiders(tenant_a, tenant_b) -> None:
    outsider = Client(HTTP_HOST=tenant_a.host)
    outsider.force_login(tenant_b.owner)

    anonymous = Client(HTTP_HOST=tenant_a.host).get("/api/docs/")

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/accounts/login/?next=/api/docs/")
    assert outsider.get("/api/docs/").status_code == 404
