from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from bastion.inventory.models import ConsoleGroup
from bastion.tenancy.models import Membership, Tenant


@transaction.atomic
def create_tenant(name: str, anonymous_users: bool = False) -> Tenant:
    """Creates a tenant with its Default Group; raises ValueError naming the problem."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("name: give the tenant a name of 1 to 100 characters")
    if Tenant.objects.filter(name__iexact=name).exists():
        raise ValueError(f"name: a tenant named {name!r} already exists")

    tenant = Tenant.objects.create(name=name, anonymous_users=anonymous_users)
    ConsoleGroup.default_for(tenant)
    return tenant


def create_administrator(tenant: Tenant, username: str, password: str, role: str):
    """Creates (or reuses) a console account and gives it `role` in `tenant`."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    if role not in dict(Membership.ROLES):
        raise ValueError(f"role: choose one of {', '.join(dict(Membership.ROLES))}")
    if len(password) < 10:
        raise ValueError("password: use at least 10 characters")
    try:
        validate_password(password)
    except ValidationError as error:
        raise ValueError("password: " + " ".join(error.messages)) from None

    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        try:
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        except IntegrityError:
            raise ValueError("username: could not give this account a role") from None
    return user
