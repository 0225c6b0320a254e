"""Settings → Activation: the re-activation check, the email template, the email log and
the re-activations waiting for a decision."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from bastion.activation import services
from bastion.activation.models import ActivationEmail
from bastion.console.views.base import client_ip, console_view, query_without_page
from bastion.inventory.models import Device, mask

LOG_LIMIT = 1000
LOG_PAGE = 50
ANONYMOUS_REASON = (
    "This tenant keeps no email addresses for its device users (anonymous users, under "
    "Settings), so no activation email can be sent and the template is not used."
)


class ActivationSettingsForm(forms.Form):
    require_reactivation_approval = forms.BooleanField(
        required=False,
        label="Re-activation needs an administrator's approval",
        help_text="An active device asking to activate again through a shared code, link or "
        "managed config waits until an administrator approves it.",
    )
    email_subject = forms.CharField(max_length=200, label="Email subject")
    email_html = forms.CharField(
        max_length=50_000,
        label="Email body (HTML)",
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Placeholders: {{ link }} (required), {{ platform }}, {{ device_name }}, "
        "{{ tenant }}.",
    )

    def __init__(self, *args, emails_on: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not emails_on:
            # Disabled fields are neither required nor read from the POST.
            for name in ("email_subject", "email_html"):
                self.fields[name].disabled = True
                self.fields[name].required = False


@console_view
def activation_settings(request):
    tenant = request.tenant
    emails_on = not tenant.anonymous_users
    current = services.settings_view(tenant)
    form = ActivationSettingsForm(request.POST or None, initial=current, emails_on=emails_on)
    if request.method == "POST" and form.is_valid():
        approval = form.cleaned_data["require_reactivation_approval"]
        values = {"require_reactivation_approval": approval}
        if emails_on:
            values["email_subject"] = form.cleaned_data["email_subject"]
            values["email_html"] = form.cleaned_data["email_html"]
        try:
            services.update_settings(
                tenant, request.user.get_username(), client_ip(request), **values
            )
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            form.add_error(field if field in form.fields else None, message or field)
        else:
            messages.success(request, "Activation settings saved.")
            return redirect("console:activation_settings")

    status = request.GET.get("status", "")
    log_error = None
    if status and status not in dict(ActivationEmail.STATUSES):
        log_error = "status: choose pending, sent, failed or skipped"
        status = ""
    context = {
        "form": form,
        "emails_on": emails_on,
        "anonymous_reason": ANONYMOUS_REASON,
        "requests": services.pending_requests(tenant),
        "page": _email_page(request, tenant, status),
        "query": query_without_page(request),
        "email_statuses": ActivationEmail.STATUSES,
        "log_status": status,
        "log_error": log_error,
    }
    status_code = 400 if request.method == "POST" or log_error else 200
    return render(request, "console/activation_settings.html", context, status=status_code)


def _email_page(request, tenant, status: str):
    rows = services.email_log(tenant, status or None, LOG_LIMIT)
    page = Paginator(rows, LOG_PAGE).get_page(request.GET.get("page"))

    # The log masks by the integration's setting; a user the sync masked stays masked
    # here too, even when the integration that sent the email is gone.
    masked = set(
        Device.objects.filter(
            tenant=tenant, pk__in=[row["device_id"] for row in page], user__masked=True
        ).values_list("pk", flat=True)
    )
    names = dict(ActivationEmail.STATUSES)
    for row in page:
        if row["device_id"] in masked and "***" not in row["recipient"]:
            row["recipient"] = mask(row["recipient"])
        row["status_label"] = names.get(row["status"], row["status"])
    return page
