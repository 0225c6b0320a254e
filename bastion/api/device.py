"""The device API that agents speak, version 1. Its OpenAPI document is at
/api/device/v1/openapi.json."""

from ninja import NinjaAPI

from bastion.activation.device_api import router as activation_router
from bastion.api.auth import DeviceAuth
from bastion.threats.device_api import router as threats_router

api = NinjaAPI(
    title="Bastion device API",
    version="1",
    urls_namespace="device-v1",
    auth=DeviceAuth(),
    docs_url=None,
)
api.add_router("/", activation_router)
api.add_router("/", threats_router)
