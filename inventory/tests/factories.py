import itertools
from decimal import Decimal

import factory

from inventory import services
from inventory.models import Filament

_keys = itertools.count()


def key(prefix: str = "test") -> str:
    return f"{prefix}-{next(_keys)}"


class FilamentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Filament

    brand = "Prusament"
    material = "PLA"
    name = factory.Sequence(lambda n: f"Colour {n}")
    colour_hex = "#FF8000"
    net_weight_g = Decimal("1000")
    spool_weight_g = Decimal("200")
    cost_per_kg = Decimal("25.00")

    @factory.post_generation
    def vendor(obj, create, extracted, **kwargs):  # noqa: N805  (factory_boy passes the object first)
        """Like filament_create: the brand has its vendor row, linked (or the vendor given)."""
        if create:
            obj.vendor = extracted if extracted is not None else services.vendor_for_brand(brand=obj.brand)
            obj.save(update_fields=["vendor"])


def spool(filament=None, grams="1000", **kwargs):
    return services.spool_receive(filament=filament or FilamentFactory(), initial_grams=grams,
                                  idempotency_key=key("receive"), **kwargs)
