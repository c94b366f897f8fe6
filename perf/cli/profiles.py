"""The load profile a ``run_perf`` request asks for: ``--stages``, ``--rate-stages`` or ``--shape NAME:K=V,…``.

One place turns the options' text into a ``perf.load.profile.Profile`` and the layout ``PerfRun.profile`` stores
(perf/models.py), and back: a Celery shard rebuilds the run's profile from that layout (``profile_from_json``),
so every share follows the same one. Stage text is parsed by ``perf.options.parse_stages`` (the New run page's
parser too); a shape's parameters by :func:`parse_shape`, from the types the shape declares.

``--shape`` syntax: ``NAME`` alone (every parameter at its default) or ``NAME:KEY=VALUE,KEY=VALUE``; a duration
takes a unit as ``--duration`` does (``30s``, ``5m``, ``1h30m``), users a whole number, a rate or a number any
number. The names are the built-ins (``perf.load.shapes``: step, spike, soak) and the project's ``PERF_SHAPES``.
"""

import inspect
from dataclasses import dataclass
from math import isfinite
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from perf.conf import perf_settings
from perf.load.profile import Kind, Profile, SpanProfile, Stage, StagedProfile, spans_from_json, spans_json
from perf.load.shapes import BUILTIN_SHAPES, ParameterKind, Shape
from perf.options import MAX_DURATION, MAX_RATE, escaped, parse_stages, parse_unit_duration

# Beyond this a run is a typo, not a test (the user split alone would take minutes): --users' limit, and the
# most users a profile may ask for.
MAX_USERS = 100_000


def shape_classes() -> dict[str, type[Shape]]:
    """The shapes ``--shape`` knows: the built-ins, then the project's ``PERF_SHAPES`` (which may replace one)."""
    shapes = dict(BUILTIN_SHAPES)
    for name, path in perf_settings.PERF_SHAPES.items():
        try:
            found = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"PERF_SHAPES[{name!r}] = {path!r} cannot be imported: {exc}") from None
        if not (isinstance(found, type) and issubclass(found, Shape)):
            raise ImproperlyConfigured(f"PERF_SHAPES[{name!r}] = {path!r} is not a subclass of "
                                       "perf.load.shapes.Shape")
        shapes[name] = found
    return shapes


@dataclass(frozen=True)
class ShapeParameter:
    """One parameter of a shape, read from the class itself (its ``__init__`` and ``parameters``): what the
    command line's text and the New run page's help both come from, so that neither keeps a copy to go stale."""

    name: str
    kind: ParameterKind
    required: bool  # no default: the shape needs it
    default: Any = None

    @property
    def default_text(self) -> str:
        """The default as ``--shape`` would take it (``5m``, ``4h``, ``10``); empty when there is none."""
        if self.required or not isinstance(self.default, int | float):
            return "" if self.required else str(self.default)
        if self.kind != "duration":
            return f"{self.default:g}"
        whole = round(self.default)
        if whole != self.default or whole == 0:
            return f"{self.default:g}s"
        hours, minutes, seconds = whole // 3600, whole % 3600 // 60, whole % 60
        return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if value)


def shape_parameters(cls: type[Shape]) -> list[ShapeParameter]:
    """The parameters ``NAME:KEY=VALUE,…`` may set: the keyword arguments of the shape's ``__init__``, in order."""
    signature = inspect.signature(cls.__init__)
    return [ShapeParameter(p.name, cls.parameters.get(p.name, "number"), p.default is p.empty,
                           None if p.default is p.empty else p.default)
            for p in list(signature.parameters.values())[1:]
            if p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY]


def _parameter(shape: str, cls: type[Shape], key: str, text: str) -> float:
    kind = cls.parameters.get(key, "number")
    where = f"--shape {shape}: {key}={escaped(text)}"
    if kind == "duration":
        return parse_unit_duration(text, where)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not isfinite(value) or value < 0 or (kind == "users" and value != int(value)):
        what = "a whole number of users" if kind == "users" else "a number"
        raise ValueError(f"{where}: {key} must be {what}, 0 or more")
    most = MAX_USERS if kind == "users" else MAX_RATE
    if kind in ("users", "rate") and value > most:
        raise ValueError(f"{where}: {key} must be at most {most:,g}")
    return value


def parse_shape(text: str) -> tuple[str, dict[str, float], Shape]:
    """``step:add=10,every=30s,to=100`` → (name, parameters, the shape built); ValueError naming the fix."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    classes = shape_classes()
    cls = classes.get(name)
    if cls is None:
        raise ValueError(f"unknown --shape {name!r}; the shapes are: {', '.join(sorted(classes))} "
                         "(the project adds its own with PERF_SHAPES)")
    known = shape_parameters(cls)
    names = [p.name for p in known]
    params: dict[str, float] = {}
    for item in (part.strip() for part in rest.split(",")) if rest.strip() else ():
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key or not value.strip():
            raise ValueError(f"--shape {name}: {item!r} must be KEY=VALUE, like --shape {name}:"
                             f"{names[0] if names else 'key'}=…")
        if key not in names:
            raise ValueError(f"--shape {name} has no parameter {key!r}; its parameters are: "
                             f"{', '.join(names) or 'none'}")
        params[key] = _parameter(name, cls, key, value.strip())
    missing = [p.name for p in known if p.required and p.name not in params]
    if missing:
        raise ValueError(f"--shape {name} needs {', '.join(f'{key}=…' for key in missing)}"
                         + (f" ({cls.summary})" if cls.summary else ""))
    try:
        shape = cls(**params)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ValueError(message if message.startswith("--shape") else f"--shape {name}: {message}") from None
    return name, params, shape


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a request asks for, and what is stored of it (``PerfRun.profile``)."""

    profile: Profile
    option: str  # "--stages", "--rate-stages" or "--shape"
    text: str

    def as_json(self, shape: str | None = None, params: dict[str, float] | None = None) -> dict[str, Any]:
        return profile_json(self.profile, "shape" if self.option == "--shape" else "stages", self.text, shape,
                            params)


def profile_json(profile: Profile, source: str, text: str, shape: str | None = None,
                 params: dict[str, float] | None = None) -> dict[str, Any]:
    """The layout of ``PerfRun.profile`` (perf/models.py): kind, source, the option's text, the shape's name and
    parameters, and the stages placed on the clock (none for a shape that decides as it goes)."""
    return {"kind": profile.kind, "source": source, "text": text, "shape": shape, "params": dict(params or {}),
            "spans": spans_json(profile.spans())}


def profile_from_json(data: dict[str, Any]) -> Profile:
    """The profile a stored layout describes (a Celery shard follows its run's): a shape is built again from its
    class and parameters, stages from their spans."""
    kind: Kind = "rate" if data.get("kind") == "rate" else "users"
    if data.get("source") == "shape" and data.get("shape"):
        cls = shape_classes()[data["shape"]]
        return cls(**data.get("params", {}))
    return SpanProfile(spans_from_json(data.get("spans", [])), kind)


def choose_profile(stages: str | None, rate_stages: str | None,
                   shape: str | None) -> tuple[ProfileChoice, dict[str, Any]] | None:
    """The profile of one of the three options (the caller has checked only one is given), with its stored
    layout; None when none is given. ValueError (one line) for bad text."""
    if stages is not None:
        profile: Profile = _staged(parse_stages(stages, "--stages", whole=True, most=MAX_USERS), "users")
        choice = ProfileChoice(profile, "--stages", stages)
        return choice, choice.as_json()
    if rate_stages is not None:
        profile = _staged(parse_stages(rate_stages, "--rate-stages", whole=False, most=MAX_RATE), "rate")
        choice = ProfileChoice(profile, "--rate-stages", rate_stages)
        return choice, choice.as_json()
    if shape is not None:
        name, params, built = parse_shape(shape)
        duration = built.duration
        if duration is not None and duration > MAX_DURATION:
            raise ValueError(f"--shape {name} lasts {duration:,.0f} s in all, longer than the longest run, 30 days")
        choice = ProfileChoice(built, "--shape", shape)
        return choice, choice.as_json(name, params)
    return None


def _staged(stages: tuple[Stage, ...], kind: Kind) -> Profile:
    return StagedProfile(stages, kind)
