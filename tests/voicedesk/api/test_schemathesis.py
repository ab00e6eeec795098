"""schemathesis against the API's own OpenAPI schema: requests built from it, as a signed-in integration sends them.

Every operation gets a few generated requests (valid and not) with the
tenant's API key; none may end in a server error. Bounded so the suite
stays quick: ``EXAMPLES`` per operation, no shrinking of a failure beyond
what hypothesis does in that budget.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import CallbackFactory, CallFactory, FaqEntryFactory, TicketFactory, UtteranceFactory
from tests.voicedesk.api.helpers import api_key_make

EXAMPLES = 12
OPENAPI_JSON = "application/vnd.oai.openapi+json"


@pytest.fixture
def api(tenant_a) -> tuple[Client, str]:
    """A client on tenant A's host and the Authorization header of an owner's API key."""
    # Server errors come back as 500 responses, to be collected, not raised into the test.
    return Client(HTTP_HOST=tenant_a.host, raise_request_exception=False), f"Bearer {api_key_make(tenant_a)}"


@pytest.fixture
def some_data(in_tenant_a) -> None:
    """A few rows, so generated small ids sometimes hit a real ticket, call, callback or FAQ entry."""
    for _ in range(3):
        call = CallFactory()
        UtteranceFactory(call=call)
        ticket = TicketFactory(call=call)
        CallbackFactory(ticket=ticket)
        FaqEntryFactory()


def _request(client: Client, authorization: str, case: Any) -> Any:
    """Send ``case`` through Django's test client: the schema's path, query, headers and JSON body."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    path = kwargs["url"].removeprefix("http://testserver")
    params = kwargs.get("params") or ""
    query = (
        params if isinstance(params, str) else urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    )
    if query:
        path = f"{path}?{query}"
    headers = {k: str(v) for k, v in (kwargs.get("headers") or {}).items()}
    headers["Authorization"] = authorization
    headers.pop("Content-Length", None)
    body = kwargs.get("json")
    data = json.dumps(body) if "json" in kwargs else kwargs.get("data") or ""
    savepoint = transaction.savepoint()  # each request sees the same data, and a failed one spoils no other
    try:
        return client.generic(
            kwargs["method"],
            path,
            data=data,
            content_type=headers.pop("Content-Type", "application/json"),
            headers={k: v for k, v in headers.items() if k.lower() not in {"host", "cookie"}},
        )
    finally:
        transaction.savepoint_rollback(savepoint)


def test_no_generated_request_makes_a_server_error(api, some_data) -> None:
    client, authorization = api
    response = client.get("/api/schema/", headers={"Accept": OPENAPI_JSON, "Authorization": authorization})
    assert response.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(response.content))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 22
    failures: list[str] = []

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), _=st.just(None))
        def run(case: Any, _: None) -> None:
            response = _request(client, authorization, case)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r} -> {response.status_code}"
                )

        run()

    assert failures == []
