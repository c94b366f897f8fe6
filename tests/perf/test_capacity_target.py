"""The capacity target (tests/capacitytarget.py) holds to its construction under real load: K slots of T seconds
serve K/T requests a second and queue the rest.

Clients here are threads of the test process, each on its own kept-alive connection, asking again as soon as
they are answered (a closed model, as run_perf's users without think time): below capacity a request takes T
and the throughput is clients/T; above it the throughput stays at K/T and each request waits its turn, clients/K
× T in all on average (Little's law). With a queue limit, the clients beyond K + the limit are refused (503) and
counted. The last test runs ``manage.py run_perf`` with the capacity pack against it, end to end.
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from statistics import mean
from urllib.parse import urlsplit

import pytest

from tests.capacitytarget import CapacityTarget, capacity_target, run_capacity_perf

WORKERS, SECONDS = 4, 0.05  # 80 requests a second
LOAD_SECONDS = 2.0


@dataclass
class Load:
    """What the clients saw: (status, seconds) of each answer, and the time they ran for."""

    answers: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def latencies(self, status: int = 200) -> list[float]:
        return [elapsed for code, elapsed in self.answers if code == status]

    def throughput(self, status: int = 200) -> float:
        return len(self.latencies(status)) / self.seconds

    def count(self, status: int) -> int:
        return len(self.latencies(status))


def connect(target: CapacityTarget) -> tuple[http.client.HTTPConnection, str]:
    """A kept-alive connection to ``target`` and the path of its API root."""
    parts = urlsplit(target.url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10), parts.path


def load(target: CapacityTarget, clients: int, seconds: float = LOAD_SECONDS) -> Load:
    """``clients`` threads, each asking GET /api/work again as soon as answered, for ``seconds``; the
    throughput counts the answers over the time from the first request to the last answer."""
    found = Load()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        connection, root = connect(target)
        start.wait()
        try:
            while time.monotonic() < deadline:
                sent = time.perf_counter()
                connection.request("GET", f"{root}/work")
                answer = connection.getresponse()
                answer.read()
                elapsed = time.perf_counter() - sent
                with lock:
                    found.answers.append((answer.status, elapsed))
                if answer.status == 503:
                    time.sleep(0.005)  # a refused client asks again soon, not in a busy loop
        finally:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join(timeout=seconds + 10)
    found.seconds = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads), "a client never got its answer"
    return found


def figures(found: Load, target: CapacityTarget) -> str:
    latencies = found.latencies()
    return (f"{found.throughput():.1f} req/s over {found.seconds:.2f} s, mean {mean(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms; {target}")


def test_below_capacity_a_request_takes_its_service_time_and_the_throughput_is_the_clients():
    """3 clients, 4 slots: nobody waits; each answer takes T, so 3/T = 60 requests a second."""
    with capacity_target(WORKERS, SECONDS) as target:
        found = load(target, 3)
    print(figures(found, target))

    assert target.capacity == 80.0
    assert SECONDS <= mean(found.latencies()) < SECONDS * 1.1, figures(found, target)
    assert found.throughput() == pytest.approx(3 / SECONDS, rel=0.1), figures(found, target)
    assert target.max_in_service == 3 and target.max_waiting == 0, target
    assert target.served == found.count(200) == len(found.answers) and target.refused == 0


def test_above_capacity_the_throughput_is_k_over_t_and_the_rest_wait_their_turn():
    """8 clients, 4 slots: 80 requests a second, no more, and each waits 8/4 × T = 100 ms on average."""
    with capacity_target(WORKERS, SECONDS) as target:
        found = load(target, 8)
    print(figures(found, target))

    assert found.throughput() == pytest.approx(target.capacity, rel=0.1), figures(found, target)
    assert mean(found.latencies()) == pytest.approx(8 / WORKERS * SECONDS, rel=0.1), figures(found, target)
    assert target.max_in_service == WORKERS and target.max_waiting == 4, target
    assert target.served == found.count(200) == len(found.answers) and target.refused == 0


def test_with_a_queue_limit_the_clients_beyond_it_are_refused_at_once_and_counted():
    """2 slots and room for 2 waiting: 4 clients are all served; with 7, the 3 beyond are answered 503 at once
    and the throughput of the served stays at the capacity."""
    with capacity_target(2, SECONDS, queue_limit=2) as target:
        within = load(target, 4, 1.0)
        assert target.refused == 0 and within.count(503) == 0, target

        beyond = load(target, 7)
    print(figures(beyond, target))

    assert beyond.count(503) > 0 and target.refused == beyond.count(503), target
    assert max(beyond.latencies(503)) < SECONDS  # refused at once: an answer after a slot takes T at least
    assert target.served == within.count(200) + beyond.count(200)
    assert beyond.throughput() == pytest.approx(target.capacity, rel=0.1), figures(beyond, target)
    assert target.max_in_service == 2 and target.max_waiting == 2, target


def test_server_timing_says_the_service_time_only_so_the_rest_of_the_clients_time_is_the_queue():
    """With ``server_timing`` each 200 says ``app;dur=`` its time in a slot, about T, however long it waited."""
    with capacity_target(1, SECONDS, server_timing=True) as target:
        connection, root = connect(target)
        connection.request("GET", f"{root}/work")
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()

    assert answer.status == 200 and body["waited_ms"] < 5
    name, _, duration = answer.headers["Server-Timing"].partition(";dur=")
    assert name == "app" and SECONDS * 1000 <= float(duration) < SECONDS * 1000 + 10


def test_healthcheck_answers_at_once_and_other_paths_are_not_found():
    with capacity_target(1, 1.0) as target:
        connection, root = connect(target)
        sent = time.perf_counter()
        connection.request("GET", f"{root}/healthcheck")
        health = connection.getresponse()
        health.read()
        elapsed = time.perf_counter() - sent
        connection.request("GET", f"{root}/nothing")
        missing = connection.getresponse()
        missing.read()
        connection.close()

    assert health.status == 200 and elapsed < 0.5
    assert missing.status == 404 and target.served == 0


def test_run_perf_with_the_capacity_pack_measures_k_over_t(tmp_path):
    """``run_perf -u 8`` against 4 slots of 50 ms: its summary shows GET /work at about 80 requests a second,
    each taking about 100 ms, and the target served every request it counted."""
    summary = tmp_path / "summary.json"
    with capacity_target(WORKERS, SECONDS) as target:
        run = run_capacity_perf(target.url, tmp_path, "--no-save", "--no-audit", "-u", "8", "-r", "100", "-t", "3s",
                                "--json", str(summary))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    entries = json.loads(summary.read_text())["entries"]
    work, aggregated = entries[0], entries[-1]
    assert (work["method"], work["name"], len(entries)) == ("GET", "/work", 2)
    assert work["num_failures"] == 0 and work["num_requests"] == target.served, (work["num_requests"], target)
    assert aggregated["rps"] == pytest.approx(target.capacity, rel=0.1), run.stdout[-2000:]
    assert work["avg_response_time"] == pytest.approx(8 / WORKERS * SECONDS * 1000, rel=0.1), run.stdout[-2000:]
