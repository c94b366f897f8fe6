"""A load profile's ramp-down, watched from inside real runs: which users stop, and how a busy one ends.

Two kinds of runs. The class mix is watched in this process (the runner's greenlets and blocking sockets take
turns, which does not change who runs): several classes of different weights, a profile up to 100 users and
back to 0, and at every user count seen the running users are the first of the spawn order, the weight split of
that count. How a busy user ends needs a request really in flight while the runner decides, so those runs happen
in a gevent-patched child process (``ramp_down_main``), as ``run_perf`` runs the engine, against a slow loopback
target in this process whose answers take as long as each request asks: the child watches every user (when the
ramp-down told it to stop, when its greenlet ended) and the scenario notes its own tasks and requests.
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import pytest

from perf.load.profile import Stage, StagedProfile
from perf.load.runner import LoadRunner, RunPlan, allocate_users, split_counts
from perf.load.session import HttpSession
from perf.load.stats import StatsRegistry
from perf.load.user import User, constant, task
from perf.options import parse_stages
from platform_pack.scenarios import SCENARIOS
from scripts.stack_services import die_with_parent
from tests.liveserver import ROOT
from tests.slowtarget import slow_target

# By hand: the engine against a loopback target (the live server's /healthcheck, or the slow target); no database.
pytestmark = [pytest.mark.once, pytest.mark.slow]

WEIGHTS = {name: cls.weight for name, cls in SCENARIOS.items()}  # 30/20/15/15/10/5/5/5
WATCH_EVERY_S = 0.005  # how often the child looks at its users: the precision of every moment it reports


# --- the class mix at every user count, going up and going down --------------------------------------------------


def _healthcheck(user: User) -> None:
    user.client.get("/healthcheck")


def _weighted_class(name: str, weight: int) -> type[User]:
    """A class of one of the platform's names and weights whose task is a healthcheck: the mix is under test,
    not the work."""
    return type(name, (User,), {"weight": weight, "wait_time": constant(1.0), "check": task(_healthcheck)})


def _watch_mix(runner: LoadRunner, seen: list[tuple[str, ...]]) -> gevent.Greenlet:
    """Note the running users' classes, in spawn order, each time they change (those told to stop are out)."""
    def watch() -> None:
        while True:
            running = tuple(type(user).__name__ for user, greenlet in runner.users
                            if not greenlet.dead and not user.stopping)
            if not seen or running != seen[-1]:
                seen.append(running)
            gevent.sleep(0.01)
    return gevent.spawn(watch)


def test_at_every_user_count_up_and_down_the_running_users_are_the_weight_split(live_server_process):
    classes = [_weighted_class(name, weight) for name, weight in WEIGHTS.items()]
    profile = StagedProfile([Stage(3, 100), Stage(0.6, 100), Stage(6, 0), Stage(0.6, 0)])
    plan = RunPlan(users=100, spawn_rate=1, duration=profile.duration, tick_interval=1.0, profile=profile)
    runner = LoadRunner(classes, plan, StatsRegistry(),
                        make_session=lambda registry: HttpSession(live_server_process.url, registry.record))
    seen: list[tuple[str, ...]] = []
    watcher = _watch_mix(runner, seen)
    try:
        assert runner.run() == "completed"
    finally:
        watcher.kill()
    order = allocate_users(WEIGHTS, 100)
    for running in seen:
        # The most recently started stop first: those running are always the first of the spawn order …
        assert list(running) == order[: len(running)], (len(running), split_counts(running))
        # … so their classes are split as the weights split that many users, going up and going down.
        assert split_counts(running) == split_counts(allocate_users(WEIGHTS, len(running))), len(running)
    counts = [len(running) for running in seen]
    peak = counts.index(100)
    assert split_counts(seen[peak]) == {"EventBrowser": 28, "ExistingUserLogin": 19, "DashboardUser": 14,
                                        "RSVPUser": 14, "FreeTicketUser": 10, "PWYCTicketUser": 5,
                                        "QuestionnaireUser": 5, "NewUserRegistration": 5}
    up, down = counts[: peak + 1], counts[peak:]
    assert up == sorted(up) and down == sorted(down, reverse=True) and down[-1] == 0, counts
    assert len(set(up)) >= 20 and len(set(down)) >= 20, counts  # many counts checked each way


# --- a busy user's end: bounded by --stop-timeout, or at the end of its task ---------------------------------------

# Patched first, as run_perf patches: then a user's request waits on a gevent socket and the runner goes on meanwhile.
CHILD = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys; sys.path.insert(0, {root!r})\n"
    "from tests.perf.test_ramp_down import ramp_down_main; ramp_down_main(sys.argv[1], sys.argv[2])\n"
)


class Noting(User):
    """A user that notes its tasks and requests, for the test to read: (what, start, end), in Unix seconds."""

    def on_start(self) -> None:
        self.notes: list[tuple[str, float, float]] = []

    def slow_task(self, requests: int, seconds: float) -> None:
        """``requests`` requests the slow target answers after ``seconds`` each, one after the other. A request
        the sealed session refuses to send raises before it is noted, and so does the task cut there."""
        task_start = time.time()
        for _ in range(requests):
            start = time.time()
            self.client.get("/sleep", params={"s": seconds}, name="/sleep")
            self.notes.append(("request", start, time.time()))
        self.notes.append(("task", task_start, time.time()))


class LongTask(Noting):
    """One task of ten 0.4 s requests (4 s), far longer than the stop-timeout it is run with."""

    wait_time = constant(0.01)
    REQUEST_S = 0.4

    @task
    def ten_slow_requests(self) -> None:
        self.slow_task(10, self.REQUEST_S)


class ShortTask(Noting):
    """One task of three 0.25 s requests (0.75 s) between short pauses: nearly always busy when told to stop."""

    wait_time = constant(0.05)
    REQUEST_S = 0.25

    @task
    def three_slow_requests(self) -> None:
        self.slow_task(3, self.REQUEST_S)


def ramp_down_main(spec_path: str, out_path: str) -> None:
    """The child's side: one profiled ``LoadRunner`` run of the spec's scenario, every user watched, all of it
    written as JSON with the moments in seconds since the profile began."""
    spec = json.loads(Path(spec_path).read_text())
    scenario = globals()[spec["scenario"]]
    profile = StagedProfile(parse_stages(spec["stages"]))
    plan = RunPlan(users=round(profile.peak), spawn_rate=1, duration=profile.duration,
                   stop_timeout=spec["stop_timeout"], tick_interval=1.0, profile=profile)
    stats = StatsRegistry()
    runner = LoadRunner([scenario], plan, stats, make_session=lambda registry: HttpSession(spec["url"],
                                                                                           registry.record))
    moments: dict[int, dict[str, Any]] = {}
    watcher = gevent.spawn(_watch_users, runner, moments)
    result = runner.run()
    watcher.kill()
    origin = runner.profile_origin or stats.start_time
    Path(out_path).write_text(json.dumps({
        "result": result, "duration": profile.duration, "requests": stats.total.num_requests,
        "failures": stats.total.num_failures, "exceptions": sorted(stats.exceptions),
        "in_flight_at_end": runner.in_flight_at_end, "cut_off_at_end": runner.cut_off_at_end,
        "users": [_user_json(seen, origin) for seen in moments.values()],
    }))


def _user_json(seen: dict[str, Any], origin: float) -> dict[str, Any]:
    """One watched user, its moments in seconds since ``origin`` (None: never seen so)."""
    def since(moment: float | None) -> float | None:
        return None if moment is None else moment - origin

    notes = getattr(seen["user"], "notes", [])  # none when it ended before on_start
    return {"retired": since(seen["retired"]), "gone": since(seen["gone"]),
            "notes": [(what, start - origin, end - origin) for what, start, end in notes]}


def _watch_users(runner: LoadRunner, moments: dict[int, dict[str, Any]]) -> None:
    """Every user the run starts: the first moment it was seen told to stop, and the first seen ended."""
    while True:
        now = time.time()
        for user, greenlet in runner.users:
            moments.setdefault(id(user), {"user": user, "greenlet": greenlet, "retired": None, "gone": None})
        for seen in moments.values():
            if seen["retired"] is None and seen["user"].stopping:
                seen["retired"] = now
            if seen["gone"] is None and seen["greenlet"].dead:
                seen["gone"] = now
        gevent.sleep(WATCH_EVERY_S)


@dataclass(frozen=True)
class Watched:
    """What the child saw, and how many requests the target answered."""

    run: dict[str, Any]
    served: int

    @property
    def users(self) -> list[dict[str, Any]]:
        return self.run["users"]


def run_ramp_down(tmp_path: Path, scenario: str, stages: str, stop_timeout: float) -> Watched:
    """``scenario`` (a class of this module) run by the child over ``stages`` against a fresh slow target."""
    with slow_target() as target:
        spec, out = tmp_path / "spec.json", tmp_path / "out.json"
        spec.write_text(json.dumps({"scenario": scenario, "stages": stages, "stop_timeout": stop_timeout,
                                    "url": target.url}))
        child = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(spec), str(out)], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, preexec_fn=die_with_parent)
        assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
        time.sleep(0.2)  # an answer the child never read would still be written and noted by the target
        return Watched(json.loads(out.read_text()), len(target.served))


def _requests(user: dict[str, Any]) -> list[tuple[float, float]]:
    return [(start, end) for what, start, end in user["notes"] if what == "request"]


def _tasks(user: dict[str, Any]) -> list[tuple[float, float]]:
    return [(start, end) for what, start, end in user["notes"] if what == "task"]


def _nothing_lost(watched: Watched) -> None:
    """No failure, no exception, nothing in flight at the run's end, and every request the target answered was
    recorded: no request was cut short by the ramp-down."""
    run = watched.run
    assert run["result"] == "completed"
    assert (run["failures"], run["exceptions"], run["in_flight_at_end"], run["cut_off_at_end"]) == (0, [], 0, 0)
    assert run["requests"] == watched.served == sum(len(_requests(user)) for user in watched.users) > 0


def test_a_task_longer_than_the_stop_timeout_is_sealed_its_request_in_flight_ends_and_the_user_is_gone(tmp_path):
    stop_timeout = 0.5
    # Three users from 0.2 s, each in its 4 s task when the target drops to 0 at 1.6-1.7 s; the run goes on to 3.7 s.
    watched = run_ramp_down(tmp_path, "LongTask", "0.2s:3,1.4s:3,0.1s:0,2s:0", stop_timeout)
    _nothing_lost(watched)
    assert len(watched.users) == 3
    slack = 0.1  # the watcher's look every 5 ms, a busy loop's turn, the end of a request noted after its answer
    for user in watched.users:
        retired, gone, requests = user["retired"], user["gone"], _requests(user)
        assert retired is not None and gone is not None and gone < watched.run["duration"], user
        sealed = retired + stop_timeout
        # Its task was under way all along: the stop-timeout ran out first, and the task never ended.
        assert not _tasks(user) and requests[0][0] < retired, user
        # Nothing was sent after the seal; the request in flight then ended and was recorded (not a failure) …
        assert all(start < sealed + slack for start, _ in requests), (sealed, requests)
        last_start, last_end = requests[-1]
        assert last_start < sealed + slack and last_end > sealed - slack, (sealed, requests[-1])
        # … and the user was gone with it: within the stop-timeout and that one request.
        assert last_end <= gone < last_end + slack, (gone, requests[-1])
        assert gone - retired < stop_timeout + (last_end - last_start) + slack, user


def test_with_a_long_stop_timeout_every_stopped_user_ends_at_the_end_of_its_task(tmp_path):
    # Four users, told to stop one by one as the target goes 4 → 0 over 1.2 s; a stop-timeout far past any task.
    watched = run_ramp_down(tmp_path, "ShortTask", "0.2s:4,1.2s:4,1.2s:0,1.5s:0", stop_timeout=10.0)
    _nothing_lost(watched)
    assert len(watched.users) == 4
    slack, task_s = 0.1, 3 * ShortTask.REQUEST_S
    busy = 0
    for user in watched.users:
        retired, gone, tasks = user["retired"], user["gone"], _tasks(user)
        assert retired is not None and gone is not None and gone < watched.run["duration"], user
        # Every task it began ended: its last one, under way or not when it was told to stop, and no new one.
        assert len(_requests(user)) == 3 * len(tasks) > 0, user
        assert all(start < retired for start, _ in tasks), (retired, tasks)
        last_start, last_end = tasks[-1]
        busy += last_start < retired < last_end
        # It ended with its task (or at once, thinking), long before the stop-timeout.
        assert last_end <= gone < max(last_end, retired) + slack, (retired, gone, tasks[-1])
        assert gone - retired < 2 * task_s, user
    assert busy >= 1, "no user was in a task when told to stop: the run tested only the thinking ones"
