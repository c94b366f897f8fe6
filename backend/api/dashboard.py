"""Routes of the dashboard area (filled in as the area lands)."""

urlpatterns: list = []
