"""The load shapes the New run page offers (perf/web/run_control.py), described from the shape classes themselves.

The page shows each shape's parameters and defaults as help, and its script disables the fields a shape sets; both
come from here, read from the classes ``run_perf --shape`` builds (``perf.cli.profiles.shape_classes``), so a
project's own shape (``PERF_SHAPES``) is offered with its own parameters and no copy of them goes stale.

Which of Users and Duration a shape sets is decided by its class, not by its parameters, so that the page's script
(which cannot build a shape) and the server agree: a shape laid out in spans (``SpanProfile``) knows its peak and
its length; another knows what it overrides (``peak``, ``duration``); what it does not know, the page asks for.
"""

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from perf.cli.profiles import shape_classes, shape_parameters
from perf.load.profile import Profile, SpanProfile
from perf.load.shapes import BUILTIN_SHAPES, Shape


@dataclass(frozen=True)
class ShapeChoice:
    """One shape as the page offers it."""

    name: str
    cls: type[Shape]

    @property
    def is_rate(self) -> bool:
        """Its target is iterations a second (the open model): Users is then the pool they run on."""
        return self.cls.kind == "rate"

    @property
    def knows_peak(self) -> bool:
        """It says ahead the most users it will ask for, so Users is not the page's to set."""
        return not self.is_rate and _knows(self.cls, "peak")

    @property
    def knows_length(self) -> bool:
        """It says ahead how long it lasts, so Duration is not the page's to set."""
        return _knows(self.cls, "duration")

    @property
    def sets(self) -> tuple[str, ...]:
        """The form's fields this shape sets (it starts and stops users itself: never a spawn rate)."""
        return tuple(name for name, set_here in (("users", self.knows_peak), ("spawn_rate", True),
                                                 ("duration", self.knows_length)) if set_here)

    @property
    def parameters_text(self) -> str:
        """``add=USERS, every=DURATION, to=USERS`` with each default in brackets: ``base=USERS (10)``."""
        return ", ".join(f"{p.name}={p.kind.upper()}" + (f" ({p.default_text})" if not p.required else "")
                         for p in shape_parameters(self.cls)) or "none"

    @property
    def help(self) -> str:
        """One line: its parameters with their defaults, then what it does (its ``summary``)."""
        about = self.cls.summary.strip().rstrip(".")
        return f"{self.name}: {self.parameters_text}" + (f"; {about}." if about else ".")


def _knows(cls: type[Shape], attribute: str) -> bool:
    return issubclass(cls, SpanProfile) or getattr(cls, attribute) is not getattr(Profile, attribute)


def shape_choices() -> tuple[list[ShapeChoice], str]:
    """The shapes to offer, and the reason when the project's ``PERF_SHAPES`` cannot be read (the built-ins are
    then offered alone: a run without a shape does not need the setting, and ``manage.py check`` names the fault)."""
    try:
        classes, error = shape_classes(), ""
    except ImproperlyConfigured as exc:
        classes, error = dict(BUILTIN_SHAPES), str(exc)
    return [ShapeChoice(name, cls) for name, cls in classes.items()], error
