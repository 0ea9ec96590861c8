"""The one state-machine guard: what it lets through, what it refuses, and how it says so."""

import pytest
from django.db import models
from django.utils import translation

from fablab.exceptions import Conflict, IllegalTransition
from fablab.states import check_transition


class Door(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    LOCKED = "locked", "Locked"


ALLOWED = {
    Door.OPEN: {Door.CLOSED},
    Door.CLOSED: {Door.OPEN, Door.LOCKED},
    Door.LOCKED: set(),
}


@pytest.mark.parametrize(("current", "target"), [
    (Door.OPEN, Door.CLOSED), (Door.CLOSED, Door.LOCKED), (Door.CLOSED, Door.OPEN),
    ("closed", "locked"),  # plain values, as a row read from the database holds them
])
def test_listed_moves_pass(current, target):
    assert check_transition(ALLOWED, current, target, what="The door") is None


def test_an_unlisted_move_is_a_409_conflict_naming_both_states():
    with pytest.raises(IllegalTransition) as refused:
        check_transition(ALLOWED, "open", Door.LOCKED, what="The door")
    assert isinstance(refused.value, Conflict)
    assert refused.value.status == 409
    assert refused.value.message == "The door cannot change from Open to Locked."


def test_a_final_state_goes_nowhere_not_even_to_itself():
    for target in Door:
        with pytest.raises(IllegalTransition, match="from Locked to"):
            check_transition(ALLOWED, Door.LOCKED, target, what="The door")


@pytest.mark.parametrize(("current", "target", "message"), [
    ("ajar", Door.OPEN, "The door cannot change from ajar to Open."),
    (Door.OPEN, "ajar", "The door cannot change from Open to ajar."),
    (None, Door.OPEN, "The door cannot change from None to Open."),
])
def test_unknown_states_are_refused_with_a_domain_error(current, target, message):
    with pytest.raises(IllegalTransition) as refused:
        check_transition(ALLOWED, current, target, what="The door")
    assert refused.value.message == message


def test_the_message_speaks_the_active_language():
    with translation.override("de"), pytest.raises(IllegalTransition) as refused:
        check_transition(ALLOWED, Door.OPEN, Door.LOCKED, what="Die Tür")
    assert refused.value.message == "Die Tür kann nicht von „Open“ zu „Locked“ wechseln."
