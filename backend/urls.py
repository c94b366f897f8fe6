from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("backend.api.urls")),
]

handler404 = "backend.api.base.not_found"
handler500 = "backend.api.base.server_error"
