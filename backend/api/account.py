"""Routes of the account area (filled in as the area lands)."""

urlpatterns: list = []
