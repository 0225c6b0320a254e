"""Signing in, lockout, signing out and switching tenants."""

from django.contrib.auth import get_user_model
from django.urls import reverse

from bastion.api.auth import SESSION_TENANT_KEY
from bastion.console.models import SignInFailure
from bastion.tenancy.models import AuditEntry, Membership
from tests.console.conftest import PASSWORD


def sign_in(client, username, password):
    return client.post(reverse("console:login"), {"username": username, "password": password})


def test_pages_need_a_signed_in_account(client, tenant):
    response = client.get(reverse("console:devices"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


def test_alice_signs_in_and_it_is_audited(client, alice, tenant):
    response = sign_in(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert client.get(reverse("console:dashboard")).status_code == 200
    entry = AuditEntry.objects.get(action="signed_in")
    assert (entry.tenant, entry.actor, entry.source_ip) == (tenant, "alice", "127.0.0.1")


def test_passwords_are_hashed_with_argon2(alice):
    assert alice.password.startswith("argon2")


def test_a_wrong_password_is_refused_without_saying_which_part(client, alice):
    response = sign_in(client, "alice", "not it")

    assert response.status_code == 401
    assert "username or password is not right" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_account_even_for_the_right_password(client, alice, settings):
    settings.BASTION_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        sign_in(client, "alice", "guess")

    response = sign_in(client, "alice", PASSWORD)

    assert response.status_code == 401
    assert "locked" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_success_clears_the_failures(client, alice, settings):
    settings.BASTION_LOGIN_MAX_FAILURES = 3
    sign_in(client, "alice", "guess")

    sign_in(client, "alice", PASSWORD)

    assert not SignInFailure.objects.filter(username="alice").exists()


def test_an_account_without_a_role_cannot_sign_in(client, db):
    get_user_model().objects.create_user("drifter", password=PASSWORD)

    response = sign_in(client, "drifter", PASSWORD)

    assert response.status_code == 401


def test_the_next_parameter_cannot_leave_the_site(client, alice):
    response = client.post(
        reverse("console:login") + "?next=https://evil.example/",
        {"username": "alice", "password": PASSWORD},
    )

    assert response["Location"] == reverse("console:dashboard")


def test_sign_out_needs_a_post_and_ends_the_session(admin_client):
    assert admin_client.get(reverse("console:logout")).status_code == 405

    admin_client.post(reverse("console:logout"))

    assert admin_client.get(reverse("console:dashboard")).status_code == 302


def test_alice_switches_to_another_tenant_she_serves(admin_client, alice, other_tenant):
    Membership.objects.create(user=alice, tenant=other_tenant, role=Membership.READ_ONLY)

    response = admin_client.post(reverse("console:switch_tenant"), {"tenant": other_tenant.pk})

    assert response.status_code == 302
    assert admin_client.session[SESSION_TENANT_KEY] == other_tenant.pk
    page = admin_client.get(reverse("console:dashboard")).content.decode()
    assert "Read-only" in page


def test_nobody_switches_into_a_tenant_they_do_not_serve(admin_client, tenant, other_tenant):
    response = admin_client.post(reverse("console:switch_tenant"), {"tenant": other_tenant.pk})

    assert response.status_code == 403
    assert admin_client.session[SESSION_TENANT_KEY] == tenant.pk


def test_responses_carry_a_content_security_policy_without_inline_script(admin_client):
    response = admin_client.get(reverse("console:dashboard"))

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode()
