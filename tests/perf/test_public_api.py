"""``from perf import User, task, between, constant, StopUser, SharedContext, Check``: the names scenario writers use,
the same objects as the engine's own, and loaded only when asked for."""

import subprocess
import sys

import pytest

import perf
from perf import Check, SharedContext, StopUser, User, between, constant, task
from perf.analysis.audit import Check as EngineCheck
from perf.load import context, user
from tests.liveserver import ROOT


def test_the_public_names_are_the_engines_own_objects():
    assert (User, task, between, constant, StopUser) == (user.User, user.task, user.between, user.constant,
                                                         user.StopUser)
    assert SharedContext is context.SharedContext and Check is EngineCheck
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
