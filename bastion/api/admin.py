"""The admin API, version 1: the same things an administrator does in the console.
Its OpenAPI document is at /api/admin/v1/openapi.json."""

from ninja import NinjaAPI

from bastion.activation.admin_api import router as activation_router
from bastion.api.auth import AdminBearer, AdminSession
from bastion.mdm.admin_api import router as mdm_router
from bastion.threats.admin_api import router as threats_router
from bastion.threats.inventory_api import router as inventory_threats_router

api = NinjaAPI(
    title="Bastion admin API",
    version="1",
    urls_namespace="admin-v1",
    auth=[AdminBearer(), AdminSession()],
    docs_url=None,
)
api.add_router("/", mdm_router)
api.add_router("/", threats_router)
api.add_router("/", inventory_threats_router)
api.add_router("/", activation_router)
