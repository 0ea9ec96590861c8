from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput

NUL = "\x00"


def nul_location(value, where: tuple = ()) -> tuple | None:
    """Where in `value` (a string, or dicts and lists of them, keys included) a NUL character is; None if nowhere.

    No text column can store NUL (PostgreSQL refuses it in text and in jsonb), so a value holding one is
    invalid input wherever it arrives.
    """
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return (*where, key)
            found = nul_location(item, (*where, key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_location(item, (*where, index))
            if found is not None:
                return found
    return None


def _refuse_nul(instance: models.Model) -> None:
    fields = {
        field.name: [_("Null characters are not allowed.")]
        for field in instance._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField | models.JSONField)
        and nul_location(getattr(instance, field.attname)) is not None
    }
    if fields:
        raise InvalidInput("; ".join(f"{name}: {errors[0]}" for name, errors in fields.items()),
                           extra={"fields": fields})


def validate(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """`full_clean()` that raises the domain's InvalidInput with readable messages.

    Text and JSON values holding a NUL character are refused too, whatever door they came through.
    """
    _refuse_nul(instance)
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            messages = [
                f"{field}: {message}" if field != "__all__" else str(message)
                for field, errors in exc.message_dict.items()
                for message in errors
            ]
            fields = {field: list(errors) for field, errors in exc.message_dict.items()}
        else:
            messages, fields = list(exc.messages), {}
        raise InvalidInput("; ".join(messages), extra={"fields": fields} if fields else None) from None
