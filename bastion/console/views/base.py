"""What every console page shares: the signed-in account's tenant and role, audit, paging."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from bastion.api.auth import SESSION_TENANT_KEY
from bastion.tenancy.models import AuditEntry, Membership

PAGE_SIZE = 50
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def memberships_of(user):
    return list(
        Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
    )


def current_membership(request) -> Membership | None:
    """The membership of the tenant chosen at sign-in or with the switcher; else the first."""
    memberships = memberships_of(request.user)
    request.memberships = memberships
    chosen = request.session.get(SESSION_TENANT_KEY)
    for membership in memberships:
        if membership.tenant_id == chosen:
            return membership
    if memberships:
        request.session[SESSION_TENANT_KEY] = memberships[0].tenant_id
        return memberships[0]
    return None


def console_view(view=None, *, read_only_post: bool = False):
    """Signs in, binds request.tenant and request.role, and refuses changes by read-only roles.

    Every POST is a change unless the view says otherwise (`read_only_post`), so a view
    that forgets a check still can't be used by a read-only administrator.
    """

    def decorate(func):
        @login_required
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                return render(request, "console/no_tenant.html", status=403)

            request.tenant = membership.tenant
            request.role = membership.role
            request.can_change = membership.role == Membership.ADMIN
            if request.method not in SAFE_METHODS and not read_only_post:
                if not request.can_change:
                    return forbidden(request)
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def forbidden(request, message: str = "Read-only administrators can't change anything."):
    return render(request, "console/forbidden.html", {"message": message}, status=403)


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded header is the client's word, and would let anyone
    # write any address into the audit log.
    return request.META.get("REMOTE_ADDR") or None


def audit(request, action: str, object_type: str = "", object_id="", **detail) -> AuditEntry:
    return AuditEntry.objects.create(
        tenant=request.tenant,
        actor=request.user.get_username(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
        source_ip=client_ip(request),
    )


def paginate(request, queryset, size: int = PAGE_SIZE):
    paginator = Paginator(queryset, size)
    return paginator.get_page(request.GET.get("page"))


def query_without_page(request) -> str:
    """The current filters as a query string, for the pager's links."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def version_key(version: str) -> tuple:
    """Orders "17.4.1" after "17.10" correctly; text parts sort after numbers."""
    parts = []
    for piece in version.replace("-", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return tuple(parts)


def below(version: str, minimum: str) -> bool:
    if not minimum or not version:
        return False
    return version_key(version) < version_key(minimum)
