"""Sign-up on the public site makes the account and the business in one step."""

import re

from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_exists

from tenants.models import Membership, Tenant, User


def _signup(client: Client, **overrides: str):
    data = {
        "email": "founder@example.com",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
        "business_name": "Delta Drains",
        "subdomain": "delta",
    } | overrides
    return client.post("/accounts/signup/", data)


def test_signup_creates_user_tenant_and_sends_verification(db) -> None:
    client = Client(HTTP_HOST="localhost")

    response = _signup(client)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="founder@example.com")
    tenant = Tenant.objects.get(schema_name="delta")
    assert tenant.name == "Delta Drains"
    assert schema_exists("delta")
    assert Membership.objects.get(tenant=tenant).user == user
    assert EmailAddress.objects.get(user=user).verified is False
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["founder@example.com"]
    key_url = re.search(r"http://localhost/accounts/confirm-email/\S+/", mail.outbox[0].body)
    assert key_url is not None

    client.post(key_url.group(0).removeprefix("http://localhost"))
    assert EmailAddress.objects.get(user=user).verified is True


def test_signup_with_a_taken_subdomain_keeps_the_form_and_creates_nothing(tenant_a) -> None:
    client = Client(HTTP_HOST="localhost")
    users_before = User.objects.count()

    response = _signup(client, subdomain="alpha")

    assert response.status_code == 200
    assert response.context["form"].errors["subdomain"] == ['"alpha" is already taken.']
    assert User.objects.count() == users_before
    assert b"Delta Drains" in response.content  # what was typed is kept


def test_signup_is_closed_on_tenant_hosts(tenant_a) -> None:
    response = Client(HTTP_HOST="alpha.localhost").get("/accounts/signup/")
    assert response.status_code == 200
    assert b"Sign Up Closed" in response.content


def test_login_password_reset_and_totp_activation(tenant_a) -> None:
    EmailAddress.objects.create(user=tenant_a.owner, email=tenant_a.owner.email, verified=True, primary=True)
    client = Client(HTTP_HOST="localhost")
    assert client.get("/accounts/password/reset/").status_code == 200
    login = client.post("/accounts/login/", {"login": "owner@alpha.test", "password": "correct horse battery staple"})
    assert login.status_code == 302
    # Turning on MFA asks for the password again before showing the secret.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": "correct horse battery staple"})

    response = client.get("/accounts/2fa/totp/activate/")

    assert response.status_code == 200
    assert "otpauth://totp/" in response.context["totp_url"]


def test_login_on_tenant_host_with_email_and_password(tenant_a) -> None:
    EmailAddress.objects.create(user=tenant_a.owner, email=tenant_a.owner.email, verified=True, primary=True)
    client = Client(HTTP_HOST="alpha.localhost")
    response = client.post(
        "/accounts/login/", {"login": "owner@alpha.test", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
