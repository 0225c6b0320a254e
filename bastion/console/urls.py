from django.urls import path

from bastion.console.views import (
    activation,
    auth,
    catalog,
    dashboard,
    devices,
    mdm,
    mdm_wizard,
    policy,
    tenant,
    threats,
)

app_name = "console"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("sign-in", auth.sign_in, name="login"),
    path("sign-out", auth.sign_out, name="logout"),
    path("tenant", auth.switch_tenant, name="switch_tenant"),
    path("devices", devices.device_list, name="devices"),
    path("devices/<int:device_id>", devices.device_detail, name="device"),
    path("users", catalog.user_list, name="users"),
    path("apps", catalog.app_list, name="apps"),
    path("profiles", catalog.profile_list, name="profiles"),
    path("os-risk", catalog.os_risk, name="os_risk"),
    path("settings", tenant.tenant_settings, name="tenant_settings"),
    path("audit", tenant.audit_log, name="audit_log"),
    path("mdm", mdm.mdm_list, name="mdm_list"),
    path("mdm/add", mdm_wizard.choose_provider, name="mdm_add"),
    path("mdm/add/setup", mdm_wizard.setup, name="mdm_setup"),
    path("mdm/add/groups", mdm_wizard.choose_groups, name="mdm_groups"),
    path("mdm/<int:integration_id>", mdm.mdm_detail, name="mdm_detail"),
    path("mdm/<int:integration_id>/edit", mdm.mdm_edit, name="mdm_edit"),
    path("mdm/<int:integration_id>/groups", mdm_wizard.edit_groups, name="mdm_edit_groups"),
    path("mdm/<int:integration_id>/remove", mdm.mdm_remove, name="mdm_remove"),
    path("mdm/<int:integration_id>/sync", mdm.sync_now, name="sync_now"),
    path("mdm/<int:integration_id>/progress", mdm.sync_progress, name="sync_progress"),
    path("mdm/<int:integration_id>/history", mdm.sync_history, name="sync_history"),
    path("threats", threats.threat_log, name="threats"),
    path("threats/<int:event_id>", threats.threat_detail, name="threat"),
    path(
        "threats/<int:event_id>/actions/<int:action_id>/retry",
        threats.retry,
        name="threat_retry",
    ),
    path("policy", policy.policy, name="policy"),
    path("mdm/<int:integration_id>/activation", activation.reveal, name="activation_reveal"),
    path(
        "mdm/<int:integration_id>/activation/code",
        activation.rotate_code,
        name="activation_rotate",
    ),
    path(
        "mdm/<int:integration_id>/activation/link",
        activation.regenerate_link,
        name="activation_regenerate",
    ),
    path(
        "mdm/<int:integration_id>/activation/files/<str:name>",
        activation.download,
        name="activation_file",
    ),
    path("activation/requests/<int:request_id>", activation.decide, name="activation_decide"),
]
