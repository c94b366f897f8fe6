"""Routes of the events area (filled in as the area lands)."""

urlpatterns: list = []
