"""The activation section of an MDM's page: code, link, files, and re-activation approvals.

The activation app's services do the work and write their own audit entries; these views
only check the role and turn their answers and errors into pages.
"""

from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseNotFound
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from bastion.activation import engine, files, services
from bastion.console.views.base import client_ip, console_view, forbidden
from bastion.mdm.models import Integration


class RegenerateForm(forms.Form):
    days = forms.IntegerField(
        label="Valid for (days)", min_value=1, max_value=3650, required=False, initial=365
    )


def _integration(request, integration_id: int) -> Integration:
    return get_object_or_404(
        Integration.objects.select_related("tenant"), tenant=request.tenant, pk=integration_id
    )


def section(request, integration: Integration, **extra) -> dict:
    return {
        "activation": services.summary(integration),
        "regenerate_form": extra.pop("regenerate_form", None) or RegenerateForm(),
        **extra,
    }


@console_view
def reveal(request, integration_id: int):
    """Shows the code and link in full; POST so that showing them is a deliberate, audited act."""
    integration = _integration(request, integration_id)
    if request.method != "POST":
        return redirect("console:mdm_detail", integration_id=integration.pk)
    actor, ip = request.user.get_username(), client_ip(request)
    context = {
        "integration": integration,
        "code": services.show_code(integration, actor, ip),
        "link": services.show_link(integration, actor, ip),
        "config": services.config_table(integration, "current"),
    }
    return render(request, "console/activation_reveal.html", context)


@require_POST
@console_view
def rotate_code(request, integration_id: int):
    integration = _integration(request, integration_id)
    services.rotate_code(integration, request.user.get_username(), client_ip(request))
    messages.success(request, "A new activation code replaces the old one.")
    return redirect("console:mdm_detail", integration_id=integration.pk)


@require_POST
@console_view
def regenerate_link(request, integration_id: int):
    integration = _integration(request, integration_id)
    form = RegenerateForm(request.POST)
    if form.is_valid():
        try:
            services.regenerate_link(
                integration,
                request.user.get_username(),
                client_ip(request),
                days=form.cleaned_data["days"] or None,
            )
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            form.add_error("days", message or field)
    if form.errors:
        from bastion.console.views.mdm import detail_context

        context = detail_context(integration)
        context.update(section(request, integration, regenerate_form=form))
        return render(request, "console/mdm_detail.html", context, status=400)
    messages.success(request, "A new activation link replaces the old one.")
    return redirect("console:mdm_detail", integration_id=integration.pk)


@console_view
def download(request, integration_id: int, name: str):
    integration = _integration(request, integration_id)
    if name not in files.FILES:
        return HttpResponseNotFound("No such file.")
    if name in files.SECRET_FILES and not request.can_change:
        return forbidden(request, "This file holds the activation code: administrators only.")
    rendered = services.download(integration, name, request.user.get_username(), client_ip(request))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    return response


@require_POST
@console_view
def decide(request, request_id: int):
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, "decision: choose approve or reject.")
        return redirect("console:mdm_list")
    approve = decision == "approve"
    try:
        engine.decide(
            request.tenant, request_id, approve, request.user.get_username(), client_ip(request)
        )
    except LookupError:
        return HttpResponseNotFound("No such request.")
    except ValueError as error:
        messages.error(request, str(error))
        return redirect("console:mdm_list")
    messages.success(request, "Re-activation approved." if approve else "Re-activation refused.")
    return redirect("console:mdm_list")
