"""Sign-in with lockout, sign-out, and the tenant switcher."""

import logging

from django import forms
from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from bastion.api.auth import SESSION_TENANT_KEY
from bastion.console import lockout
from bastion.console.views.base import client_ip, console_view, memberships_of
from bastion.tenancy.models import AuditEntry

log = logging.getLogger(__name__)

LOCKED = "Too many failed sign-ins: this account is locked for a while. Try again later."
WRONG = "The username or password is not right."


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(max_length=1024, widget=forms.PasswordInput(render_value=False))


def sign_in(request):
    if request.user.is_authenticated:
        return redirect("console:dashboard")

    form = SignInForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        ip = client_ip(request)
        if lockout.is_locked(username, ip):
            error = LOCKED
        else:
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if user is None or not memberships_of(user):
                lockout.record_failure(username, ip)
                error = LOCKED if lockout.is_locked(username, ip) else WRONG
            else:
                lockout.clear(username)
                login(request, user)
                _audit_sign_in(request, user)
                return _redirect_next(request)

    status = 200 if not error else 401
    return render(request, "console/sign_in.html", {"form": form, "error": error}, status=status)


def _audit_sign_in(request, user) -> None:
    for membership in memberships_of(user):
        AuditEntry.objects.create(
            tenant=membership.tenant,
            actor=user.get_username(),
            action="signed_in",
            object_type="account",
            object_id=str(user.pk),
            source_ip=client_ip(request),
        )


def _redirect_next(request):
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect("console:dashboard")


@require_POST
def sign_out(request):
    logout(request)
    return redirect("console:login")


@require_POST
@console_view(read_only_post=True)
def switch_tenant(request):
    # Switching changes nothing stored, so read-only administrators may switch too.
    wanted = request.POST.get("tenant", "")
    for membership in request.memberships:
        if str(membership.tenant_id) == wanted:
            request.session[SESSION_TENANT_KEY] = membership.tenant_id
            break
    else:
        return render(
            request,
            "console/forbidden.html",
            {"message": "You have no role in that tenant."},
            status=403,
        )
    return redirect(reverse("console:dashboard"))
