"""Routes of the tickets area (filled in as the area lands)."""

urlpatterns: list = []
