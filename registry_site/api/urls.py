from django.urls import path

from registry_site.api.api import api

urlpatterns = [path("", api.urls)]
