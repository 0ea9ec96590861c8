from django.core.exceptions import ValidationError
from django.db import models

from fablab.exceptions import InvalidInput


def validate(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """`full_clean()` that raises the domain's InvalidInput with readable messages."""
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
