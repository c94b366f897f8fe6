"""Routes of the questionnaires area (filled in as the area lands)."""

urlpatterns: list = []
