import factory

from printers.choices import Driver
from printers.models import Printer, PrinterLiveState


class PrinterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Printer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Printer {n}")
    driver = Driver.PRUSALINK
    model = "Core One"
    host = "127.0.0.1"

    @factory.post_generation
    def live(obj, create, extracted, **kwargs):
        if create:
            PrinterLiveState.objects.get_or_create(printer=obj)


class BambuPrinterFactory(PrinterFactory):
    driver = Driver.BAMBU
    model = "P1S"
    serial = factory.Sequence(lambda n: f"01P00A{n:09d}")
