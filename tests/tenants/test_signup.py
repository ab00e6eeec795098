"""Sign-up on the public site makes the account and the business in one step."""

import re

from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_exists

from tenants.models import BusinessSignup, Membership, Tenant, User


def _signup(client: Client, **overrides: str):
    data = {
        "email": "founder@example.com",
        "password1": "a-long-enough-passphrase",
        "password2": "a-long-enough-passphrase",
        "business_name": "Delta Drains",
        "subdomain": "delta",
    } | overrides
    return client.post("/accounts/signup/", data)


def _confirm(client: Client, message_index: int = -1) -> None:
    key_url = re.search(r"http://localhost/accounts/confirm-email/\S+/", mail.outbox[message_index].body)
    assert key_url is not None
    client.post(key_url.group(0).removeprefix("http://localhost"))


def _progress(client: Client) -> list[tuple[str, str, str]]:
    return [(step.label, step.state, step.detail) for step in client.get("/").context["progress"]]


def test_signup_makes_the_account_and_the_business_only_after_the_email_is_verified(db) -> None:
    client = Client(HTTP_HOST="localhost")

    response = _signup(client)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="founder@example.com")
    assert EmailAddress.objects.get(user=user).verified is False
    assert not Tenant.objects.filter(schema_name="delta").exists()
    assert not schema_exists("delta")
    assert list(BusinessSignup.objects.values_list("user__email", "name", "slug", "error")) == [
        ("founder@example.com", "Delta Drains", "delta", "")
    ]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["founder@example.com"]
    sent = client.get("/accounts/confirm-email/").content.decode()
    assert '<li class="todo" aria-current="step"><span class="state">Now:</span> Your email address.' in sent
    watcher = Client(HTTP_HOST="localhost")
    watcher.force_login(user)
    assert _progress(watcher) == [
        ("Your account", "done", "founder@example.com"),
        ("Your email address", "now", "Follow the link we sent to founder@example.com."),
        ("Your business", "later", "We create Delta Drains at delta as soon as your email is confirmed."),
        ("Plan, phone number and a test call", "later", "On your business's dashboard, once it is made."),
    ]

    key_url = re.search(r"http://localhost(/accounts/confirm-email/\S+/)", mail.outbox[0].body)
    assert key_url is not None
    confirmed = client.post(key_url.group(1), follow=True)
    assert [str(m) for m in confirmed.context["messages"]][-1] == (
        "Delta Drains is ready at delta.localhost. Sign in there to choose a plan, add your phone number "
        "and make a test call."
    )

    assert EmailAddress.objects.get(user=user).verified is True
    tenant = Tenant.objects.get(schema_name="delta")
    assert tenant.name == "Delta Drains"
    assert schema_exists("delta")
    assert Membership.objects.get(tenant=tenant).user == user
    assert not BusinessSignup.objects.exists()


def test_unverified_sign_ups_cannot_squat_a_subdomain(db) -> None:
    squatter, owner = Client(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
    _signup(squatter, email="squatter@example.com", business_name="Squat Co")
    _signup(owner, email="real-owner@example.com", business_name="Delta Drains")

    _confirm(owner, message_index=1)

    tenant = Tenant.objects.get(schema_name="delta")
    assert (tenant.name, Membership.objects.get(tenant=tenant).user.email) == ("Delta Drains", "real-owner@example.com")


def test_a_subdomain_taken_before_verification_is_chosen_again_on_the_home_page(db) -> None:
    first, second = Client(HTTP_HOST="localhost"), Client(HTTP_HOST="localhost")
    _signup(first, email="first@example.com", business_name="First Drains")
    _signup(second, email="second@example.com", business_name="Second Drains")
    _confirm(second, message_index=1)

    _confirm(first, message_index=0)

    user = User.objects.get(email="first@example.com")
    assert BusinessSignup.objects.get(user=user).error == '"delta" is already taken.'
    assert Tenant.objects.filter(memberships__user=user).count() == 0
    first.force_login(user)
    home = first.get("/")
    assert home.context["subdomain_form"].initial == {"subdomain": "delta"}
    assert _progress(first)[1:3] == [
        ("Your email address", "done", "Confirmed."),
        ("Your business", "now", '"delta" is already taken. Choose another subdomain for First Drains.'),
    ]
    assert b"Please choose another subdomain for First Drains" in home.content

    taken = first.post("/business/subdomain", {"subdomain": "delta"})
    assert taken.status_code == 400
    assert taken.context["subdomain_form"].errors["subdomain"] == ['"delta" is already taken.']

    made = first.post("/business/subdomain", {"subdomain": "first-drains"})
    assert made["Location"] == "/"
    tenant = Tenant.objects.get(schema_name="first_drains")
    assert (tenant.name, Membership.objects.get(tenant=tenant).user) == ("First Drains", user)
    assert not BusinessSignup.objects.filter(user=user).exists()


def test_an_unverified_account_cannot_make_its_business_by_posting_a_subdomain(db) -> None:
    client = Client(HTTP_HOST="localhost")
    _signup(client)
    client.force_login(User.objects.get(email="founder@example.com"))

    response = client.post("/business/subdomain", {"subdomain": "delta-two"})

    assert response.status_code == 404
    assert not Tenant.objects.filter(schema_name__in=["delta", "delta_two"]).exists()
    assert BusinessSignup.objects.get().slug == "delta"


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
