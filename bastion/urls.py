from django.http import JsonResponse
from django.urls import include, path

from bastion.api.admin import api as admin_api
from bastion.api.device import api as device_api


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health, name="health"),
    path("api/device/v1/", device_api.urls),
    path("api/admin/v1/", admin_api.urls),
    path("", include("bastion.ops.urls")),
    path("", include("bastion.console.urls")),
]
