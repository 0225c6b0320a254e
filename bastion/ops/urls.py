from django.urls import path

from bastion.ops import views

urlpatterns = [
    path("ready", views.ready, name="ready"),
    path("metrics", views.metrics, name="metrics"),
]
