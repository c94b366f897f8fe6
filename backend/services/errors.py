"""The one error the business rules raise, below the API layer.

A rule that refuses a request says why and which HTTP status the contract (docs/api.md, "Errors") gives
that refusal; it never builds a response body. ``backend.api.base.api_view`` translates every
:class:`ServiceError` into the JSON the contract lists, so the services can be called (and tested) without
the API layer, and the API layer is the only place that knows what an error looks like on the wire.
"""


class ServiceError(Exception):
    """A business refusal: ``status`` is the HTTP status the contract gives it, ``detail`` its message.

    Answered as ``{"detail": detail}`` unless a subclass carries a richer body (see
    :class:`backend.services.eligibility.NotEligible`).
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
