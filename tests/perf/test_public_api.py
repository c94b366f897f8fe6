"""``from perf import User, task, Shape, HttpSession, Check, …``: the names scenario and pack writers use, the same
objects as the engine's own, documented where writers look, and loaded only when asked for."""

import re
import subprocess
import sys

import pytest

import perf
from perf import (
    AuditReport,
    Check,
    Facts,
    HttpSession,
    ParameterKind,
    Response,
    ResponseContext,
    Shape,
    SharedContext,
    SpanShape,
    StageSpan,
    StopUser,
    User,
    between,
    constant,
    describe_error,
    tag,
    task,
)
from perf.analysis import audit
from perf.load import context, profile, session, shapes, user
from tests.liveserver import ROOT


def test_the_public_names_are_the_engines_own_objects():
    assert (User, task, tag, between, constant, StopUser) == (user.User, user.task, user.tag, user.between,
                                                              user.constant, user.StopUser)
    assert SharedContext is context.SharedContext
    assert (HttpSession, Response, ResponseContext, describe_error) == (
        session.HttpSession, session.Response, session.ResponseContext, session.describe_error)
    assert (Shape, SpanShape, ParameterKind, StageSpan) == (shapes.Shape, shapes.SpanShape, shapes.ParameterKind,
                                                            profile.StageSpan)
    assert (Check, AuditReport, Facts) == (audit.Check, audit.AuditReport, audit.Facts)
    assert sorted(perf.__all__) == sorted(perf._PUBLIC) and set(perf.__all__) <= set(dir(perf))


def test_a_name_that_is_not_public_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="module 'perf' has no attribute 'HttpUser'"):
        perf.HttpUser  # noqa: B018
    with pytest.raises(ImportError, match="HttpUser"):
        exec("from perf import HttpUser", {})


def test_importing_the_app_loads_no_engine_until_a_name_is_asked_for():
    """Django imports ``perf`` while the settings load, before run_perf patches the standard library with gevent:
    that import must not pull in gevent or the engine. Asking for a name does."""
    probe = ("import sys, perf; before = {'gevent', 'perf.load.user'} & set(sys.modules); from perf import User; "
             "print(sorted(before), 'perf.load.user' in sys.modules, User.__module__)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.split() == ["[]", "True", "perf.load.user"]


def test_the_scenario_guide_lists_every_public_name_once():
    """docs/scenarios.md's table of imports is where a writer learns the API: every public name, nothing else."""
    text = (ROOT / "docs" / "scenarios.md").read_text()
    rows = re.findall(r"^\| `from perf import ([^`]+)` \|", text, re.MULTILINE)
    named = [name.strip() for row in rows for name in row.split(",")]
    assert sorted(named) == sorted(perf.__all__)


def test_a_span_shape_from_the_public_names_runs_through_its_stages():
    """The guide's recipe for a shape that knows its stages ahead: a SpanShape handed StageSpans."""

    class Plateau(SpanShape):
        parameters = {"users": "users"}

        def __init__(self, users: float) -> None:
            super().__init__([StageSpan(0, 0.0, 10.0, 0.0, users), StageSpan(1, 10.0, 30.0, users, users)])

    shape = Plateau(users=40)
    assert [shape.target(at) for at in (0, 5, 10, 29.9, 30)] == [0, 20, 40, 40, None]
    assert (shape.peak, shape.duration, [span.name for span in shape.spans()]) == (
        40, 30.0, ["stage 1 (0 → 40)", "stage 2 (40 → 40)"])


def test_describe_error_writes_an_exception_as_the_guide_shows():
    assert describe_error(TimeoutError("no email within 10s")) == "TimeoutError: no email within 10s"
    assert describe_error(ConnectionRefusedError()) == "ConnectionRefusedError"
