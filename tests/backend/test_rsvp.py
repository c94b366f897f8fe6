"""RSVP over HTTP (docs/api.md, "Events and RSVP")."""

import uuid

import pytest

from backend.models import Event, EventRSVP
from tests import factories


def _rsvp(api, event, user, answer, **kwargs):
    return api.post(f"/events/{event.id}/rsvp/{answer}", token=factories.access_token(user), **kwargs)


def _stored(event, user):
    return EventRSVP.objects.get(event=event, user=user)


@pytest.mark.parametrize("answer", ["yes", "no", "maybe"])
def test_each_answer_is_recorded(api, orm, answer):
    event, user = factories.make_event(), factories.make_user()

    response = _rsvp(api, event, user, answer)

    assert response.status_code == 200
    assert response.json() == {"event_id": str(event.id), "status": answer, "note": ""}
    assert _stored(event, user).status == answer


def test_changing_the_answer_updates_the_one_row(api, orm):
    event, user = factories.make_event(), factories.make_user()

    _rsvp(api, event, user, "maybe")
    response = _rsvp(api, event, user, "yes")

    assert response.json()["status"] == "yes"
    assert EventRSVP.objects.filter(event=event, user=user).count() == 1
    assert _stored(event, user).status == "yes"


def test_unknown_answer_is_422(api, orm):
    event, user = factories.make_event(), factories.make_user()

    response = _rsvp(api, event, user, "perhaps")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "answer"]
    assert not EventRSVP.objects.filter(event=event, user=user).exists()


def test_rsvp_without_token_is_401(api, orm):
    event = factories.make_event()

    response = api.post(f"/events/{event.id}/rsvp/yes")

    assert response.status_code == 401


def test_rsvp_to_unknown_event_is_404(api, orm):
    response = api.post(f"/events/{uuid.uuid4()}/rsvp/yes", token=factories.access_token(factories.make_user()))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_rsvp_to_invisible_event_is_404(api, orm):
    event = factories.make_event(visibility=Event.Visibility.PRIVATE)

    assert _rsvp(api, event, factories.make_user(), "yes").status_code == 404


def test_ticket_event_refuses_rsvp_with_requires_ticket(api, orm):
    event, user = factories.make_event(requires_ticket=True), factories.make_user()
    factories.make_tier(event)

    response = _rsvp(api, event, user, "yes")

    assert response.status_code == 400
    body = response.json()
    assert "detail" not in body
    assert body["allowed"] is False
    assert body["event_id"] == str(event.id)
    assert body["reason_code"] == "requires_ticket"
    assert body["next_step"] == "purchase_ticket"
    assert not EventRSVP.objects.filter(event=event, user=user).exists()


def _full_event(**fields):
    event = factories.make_event(max_attendees=1, **fields)
    EventRSVP.objects.create(event=event, user=factories.make_user(), status=EventRSVP.Status.YES)
    return event


def test_yes_on_a_full_event_is_refused_with_event_is_full(api, orm):
    event, user = _full_event(), factories.make_user()

    response = _rsvp(api, event, user, "yes")

    assert response.status_code == 400
    body = response.json()
    assert body["allowed"] is False
    assert body["reason_code"] == "event_is_full"
    assert body["next_step"] is None
    assert not EventRSVP.objects.filter(event=event, user=user).exists()


def test_full_event_with_open_waitlist_points_to_the_waitlist(api, orm):
    event = _full_event(waitlist_open=True)

    body = _rsvp(api, event, factories.make_user(), "yes").json()

    assert body["next_step"] == "join_waitlist"


@pytest.mark.parametrize("answer", ["no", "maybe"])
def test_no_and_maybe_work_on_a_full_event(api, orm, answer):
    event, user = _full_event(), factories.make_user()

    response = _rsvp(api, event, user, answer)

    assert response.status_code == 200
    assert _stored(event, user).status == answer


def test_yes_holder_can_switch_to_no_on_a_full_event(api, orm):
    event, holder = factories.make_event(max_attendees=1), factories.make_user()
    EventRSVP.objects.create(event=event, user=holder, status=EventRSVP.Status.YES)

    response = _rsvp(api, event, holder, "no")

    assert response.status_code == 200
    assert _stored(event, holder).status == "no"


def test_yes_holder_bypasses_gates_that_now_refuse(api, orm):
    event, holder = factories.make_event(), factories.make_user()
    EventRSVP.objects.create(event=event, user=holder, status=EventRSVP.Status.YES)
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CLOSED)

    response = _rsvp(api, event, holder, "maybe")

    assert response.status_code == 200


def test_closed_event_refuses_a_newcomer(api, orm):
    event = factories.make_event(status=Event.Status.CLOSED)

    response = _rsvp(api, event, factories.make_user(), "maybe")

    assert response.status_code == 400
    assert response.json()["reason_code"] == "event_is_not_open"


def test_freed_seat_can_be_taken(api, orm):
    event, first, second = factories.make_event(max_attendees=1), factories.make_user(), factories.make_user()
    assert _rsvp(api, event, first, "yes").status_code == 200
    assert _rsvp(api, event, second, "yes").status_code == 400

    assert _rsvp(api, event, first, "no").status_code == 200

    assert _rsvp(api, event, second, "yes").status_code == 200


def test_note_is_stored_when_the_event_accepts_notes(api, orm):
    event, user = factories.make_event(accept_rsvp_notes=True), factories.make_user()

    response = _rsvp(api, event, user, "yes", json={"note": "bringing cake"})

    assert response.json()["note"] == "bringing cake"
    assert _stored(event, user).note == "bringing cake"


def test_note_on_an_event_without_notes_is_400(api, orm):
    event, user = factories.make_event(), factories.make_user()

    response = _rsvp(api, event, user, "yes", json={"note": "bringing cake"})

    assert response.status_code == 400
    assert set(response.json()) == {"detail"}
    assert not EventRSVP.objects.filter(event=event, user=user).exists()


def test_unchanged_note_is_accepted_after_notes_are_turned_off(api, orm):
    event, user = factories.make_event(), factories.make_user()
    EventRSVP.objects.create(event=event, user=user, status=EventRSVP.Status.MAYBE, note="old note")

    response = _rsvp(api, event, user, "yes", json={"note": "old note"})

    assert response.status_code == 200
    assert _stored(event, user).note == "old note"


def test_no_body_clears_the_stored_note(api, orm):
    event, user = factories.make_event(), factories.make_user()
    EventRSVP.objects.create(event=event, user=user, status=EventRSVP.Status.MAYBE, note="old note")

    response = _rsvp(api, event, user, "no")

    assert response.json()["note"] == ""
    assert _stored(event, user).note == ""


def test_note_longer_than_500_characters_is_422(api, orm):
    event = factories.make_event(accept_rsvp_notes=True)

    response = _rsvp(api, event, factories.make_user(), "yes", json={"note": "x" * 501})

    assert response.status_code == 422
