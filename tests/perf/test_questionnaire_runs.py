"""QuestionnaireUser keeps the questionnaire endpoints under load on every run, not only the first.

After one run every pooled user has passed, so its my-status lists no questionnaire any more; the
scenario then asks the seeded scout account once. Real runs of ``run_perf`` against the live server.
"""

import json
from pathlib import Path

import pytest

from backend.models import Questionnaire, QuestionnaireEvaluation, QuestionnaireSubmission, User
from platform_pack.clients import api as names
from platform_pack.seeded import QUESTIONNAIRE_SCOUT_EMAIL, perf_user_email
from tests.liveserver import manage, run_perf

USERS = 3


def _questionnaire_run(env: dict[str, str], url: str, json_path: Path, counted: bool = True):
    """``counted``: 24 tasks in all, however long a busy machine takes over the logins (one took all of a 3 s run),
    so the chance that none asks for the questionnaire is 2**-24 (my-status alone has half the weight). Else 3 s:
    for users that stop in their on_start, which no count would end."""
    bound = ["--iterations", "24", "--duration", "60s"] if counted else ["--duration", "3s"]
    result = run_perf(
        env, "--users", str(USERS), "--spawn-rate", str(USERS), *bound, "--wait", "0.05,0.1",
        "--scenario", "QuestionnaireUser", "--host", url, "--no-save", "--json", str(json_path),
    )
    summary = json.loads(json_path.read_text())
    counts = {e["name"]: e["num_requests"] for e in summary["entries"] if not e["aggregated"]}
    return result, counts, summary["failures"]


@pytest.mark.slow
def test_two_runs_in_a_row_without_reset_both_get_and_submit(seeded, live_server_process, orm, tmp_path: Path):
    first, first_counts, first_failures = _questionnaire_run(seeded, live_server_process.url, tmp_path / "1.json")
    pooled = [perf_user_email(i) for i in range(USERS)]
    passed = QuestionnaireSubmission.objects.filter(user__email__in=pooled, status="ready").values("user").distinct()
    second, second_counts, second_failures = _questionnaire_run(seeded, live_server_process.url, tmp_path / "2.json")

    assert first.returncode == 0 and second.returncode == 0, first.stdout[-2000:] + second.stdout[-2000:]
    assert passed.count() == USERS  # so the second run's users found nothing in their own my-status
    for counts in (first_counts, second_counts):
        assert counts.get(names.QUESTIONNAIRE, 0) > 0 and counts.get(names.QUESTIONNAIRE_SUBMIT, 0) > 0, counts
    assert first_failures == [] and second_failures == []
    assert not QuestionnaireSubmission.objects.filter(user__email=QUESTIONNAIRE_SCOUT_EMAIL).exists()


@pytest.mark.slow
def test_no_questionnaire_to_find_is_a_failure_not_a_silent_skip(seeded, live_server_process, orm, tmp_path: Path):
    """Everyone has passed, the scout too (someone used its account): the run says so and fails."""
    questionnaire = Questionnaire.objects.get(org_links__organization__slug="perf-test-org")
    users = User.objects.filter(email__in=[QUESTIONNAIRE_SCOUT_EMAIL, *(perf_user_email(i) for i in range(USERS))])
    for user in users:
        submission = QuestionnaireSubmission.objects.create(questionnaire=questionnaire, user=user, status="ready")
        QuestionnaireEvaluation.objects.create(submission=submission, status="approved")
    try:
        result, counts, failures = _questionnaire_run(
            seeded, live_server_process.url, tmp_path / "run.json", counted=False
        )
    finally:
        manage("bootstrap_perf_tests", env=seeded)  # gives the scout its questionnaire back

    assert result.returncode == 1
    assert {(f["method"], f["name"]) for f in failures} == {(names.LOOKUP_METHOD, names.QUESTIONNAIRE_LOOKUP)}
    assert "run bootstrap_perf_tests" in failures[0]["error"]
    assert counts.get(names.QUESTIONNAIRE_SUBMIT, 0) == 0
    assert not QuestionnaireSubmission.objects.filter(user__email=QUESTIONNAIRE_SCOUT_EMAIL).exists()
