"""Who is calling: a device by its credential, or an administrator within one tenant."""

from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer

from bastion.api.models import AdminToken, DeviceCredential
from bastion.tenancy.models import Membership, Tenant

SESSION_TENANT_KEY = "tenant_id"


class DeviceAuth(HttpBearer):
    """`Authorization: Bearer <credential>`; sets request.device and request.tenant."""

    def authenticate(self, request, token):
        credential = DeviceCredential.authenticate(token)
        if credential is None:
            return None

        now = timezone.now()
        # Touch at most once a minute: a hot device must not turn every call into a write.
        if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
            DeviceCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        request.credential = credential
        request.device = credential.device
        request.tenant = credential.device.tenant
        return credential


class AdminBearer(HttpBearer):
    """`Authorization: Bearer <admin token>`; the token names its tenant."""

    def authenticate(self, request, token):
        admin = AdminToken.authenticate(token)
        if admin is None:
            return None
        membership = Membership.objects.filter(user=admin.user, tenant=admin.tenant).first()
        if membership is None:
            return None
        _bind(request, admin.user, admin.tenant, membership.role)
        return admin.user


class AdminSession(APIKeyCookie):
    """The console's signed-in session, in the tenant chosen with the tenant switcher."""

    param_name = "sessionid"

    def authenticate(self, request, key):
        user = request.user
        if not user.is_authenticated:
            return None
        tenant_id = request.session.get(SESSION_TENANT_KEY)
        membership = (
            Membership.objects.select_related("tenant")
            .filter(user=user, tenant_id=tenant_id)
            .first()
        )
        if membership is None:
            return None
        _bind(request, user, membership.tenant, membership.role)
        return user


def _bind(request, user, tenant: Tenant, role: str) -> None:
    request.admin = user
    request.tenant = tenant
    request.role = role


def require_admin_role(request) -> None:
    """Raises 403 unless the caller may change things in its tenant (not read-only)."""
    if getattr(request, "role", None) != Membership.ADMIN:
        raise HttpError(403, "read-only administrators can't change anything")
