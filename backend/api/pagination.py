"""Page-number pagination in ninja-extra's shape: ``{count, next, previous, results}``."""

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from backend.api.base import ApiError, validation_error

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise validation_error(["query", name], "Input should be a valid integer", "int_parsing") from exc
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise validation_error(["query", name], f"Input should be {limit}", "value_error")
    return value


def _page_url(request: HttpRequest, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def paginate(
    request: HttpRequest, queryset: QuerySet, serialize: Callable[[Iterable[Any]], list[dict]]
) -> dict[str, Any]:
    """One page of ``queryset``; ``serialize`` turns the page's objects into dicts in one go,
    so it can batch any per-page lookups instead of querying per row."""
    page = _int_param(request, "page", 1, 1, None)
    page_size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    count = queryset.count()
    offset = (page - 1) * page_size
    if page > 1 and offset >= count:
        raise ApiError(404, "Not Found")
    items = list(queryset[offset : offset + page_size])
    return {
        "count": count,
        "next": _page_url(request, page + 1) if offset + page_size < count else None,
        "previous": _page_url(request, page - 1) if page > 1 else None,
        "results": serialize(items),
    }
