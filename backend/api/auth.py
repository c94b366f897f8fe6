"""Routes of the auth area (filled in as the area lands)."""

urlpatterns: list = []
