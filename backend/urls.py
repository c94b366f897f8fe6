from django.contrib import admin
from django.urls import include, path

# No handler404/handler500: backend.middleware answers /api/ errors in JSON whatever DEBUG is, and the admin
# keeps Django's own HTML error pages.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("backend.api.urls")),
]
