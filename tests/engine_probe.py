"""The engine in a gevent-patched child process, driven over real HTTP, reporting every request it recorded.

The test process is not patched (Django, pytest): greenlets there share blocking sockets, so nothing
runs concurrently and gevent's timers never bound a wait. Tests that need what ``run_perf`` really does
(many users waiting at once, each request bounded by the transport's timer) start this module instead::

    python -m tests.engine_probe '{"url": ..., "users": 20, "duration": 12, "timeout": 2, ...}'

Each user of the one scenario sends ``GET /sleep?s=S`` to ``url``, S from ``delays`` (by its request
number, user 0 only) or else ``delay``, with think time ``wait``; ``model`` is "closed" (LoadRunner) or
"open" (OpenModelRunner at ``rate``). It prints one JSON object: every recorded request as
``[user, n, name, elapsed_ms, error, opened]``, the runner's end figures, and the wall time.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from perf.load.open_model import OpenModelRunner  # noqa: E402
from perf.load.runner import LoadRunner, RunPlan  # noqa: E402
from perf.load.session import HttpSession  # noqa: E402
from perf.load.stats import StatsRegistry  # noqa: E402
from perf.load.user import User, constant, task  # noqa: E402


def main(config: dict[str, Any]) -> dict[str, Any]:
    records: list[list[Any]] = []
    sessions = 0

    def make_session(registry: StatsRegistry) -> HttpSession:
        nonlocal sessions
        index = sessions
        sessions += 1

        def hook(method: str, name: str, elapsed_ms: float, size: int, error: str | None, server: Any,
                 opened: int) -> None:
            records.append([index, sum(1 for r in records if r[0] == index), name, elapsed_ms, error, opened])
            registry.record(method, name, elapsed_ms, size, error, server, opened)

        session = HttpSession(config["url"], hook, timeout=config["timeout"])
        session.probe_index = index  # type: ignore[attr-defined]
        return session

    class Sleeper(User):
        wait_time = constant(config.get("wait", 0.0))

        def __init__(self, client: HttpSession, *args: Any) -> None:
            super().__init__(client, *args)
            self.sent = 0

        @task
        def sleep(self) -> None:
            delays = config.get("delays", [])
            first = self.client.probe_index == 0  # type: ignore[attr-defined]
            seconds = delays[self.sent] if first and self.sent < len(delays) else config["delay"]
            self.sent += 1
            self.client.get(f"/sleep?s={seconds}", name=f"sleep {seconds}")

    plan = RunPlan(users=config["users"], spawn_rate=config.get("spawn_rate", 1000.0), duration=config["duration"],
                   stop_timeout=config.get("stop_timeout", 0.0), request_timeout=config["timeout"],
                   tick_interval=1.0)
    stats = StatsRegistry()
    if config.get("model", "closed") == "open":
        runner: LoadRunner = OpenModelRunner([Sleeper], plan, stats, make_session, rate=config["rate"])
    else:
        runner = LoadRunner([Sleeper], plan, stats, make_session)
    started = time.monotonic()
    result = runner.run()
    return {"result": result, "wall": time.monotonic() - started, "records": records,
            "in_flight_at_end": runner.in_flight_at_end, "cut_off_at_end": runner.cut_off_at_end,
            "end_lines": runner.end_lines()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
