"""The one guard every state machine uses before it moves an entity to a new state.

Each app declares its machine in `<app>/choices.py` as `ALLOWED_TRANSITIONS = {state: {next states}}`
(keys are members of a `TextChoices`) and its `<entity>_transition` service calls `check_transition`
before it changes the field.
"""

from collections.abc import Collection, Mapping

from django.db import models
from django.utils.translation import gettext as _

from fablab.exceptions import IllegalTransition


def _label(choices: type[models.Choices] | None, value) -> str:
    """The human label of a state, or the raw value where it is not one of the choices."""
    if choices is not None and value in choices.values:
        return str(choices(value).label)
    return str(value)


def check_transition(allowed: Mapping[str, Collection[str]], current, target, *, what: str) -> None:
    """Refuse a move from `current` to `target` that `allowed` does not list.

    `what` names the state that would change, as the subject of a sentence ("The status of a scan").
    A state `allowed` does not know, on either side, is refused as well. Raises IllegalTransition (409).
    """
    if target in allowed.get(current, ()):
        return
    choices = next((type(state) for state in allowed if isinstance(state, models.Choices)), None)
    raise IllegalTransition(
        _("%(what)s cannot change from %(old)s to %(new)s.")
        % {"what": what, "old": _label(choices, current), "new": _label(choices, target)}
    )
