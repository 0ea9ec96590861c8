from django.db import migrations, models


def add_missing_live_states(apps, schema_editor):
    """Every printer has its live state (printers the admin created before it used printer_create may not)."""
    Printer = apps.get_model("printers", "Printer")
    PrinterLiveState = apps.get_model("printers", "PrinterLiveState")
    missing = Printer.objects.filter(live__isnull=True).values_list("pk", flat=True)
    PrinterLiveState.objects.bulk_create([PrinterLiveState(printer_id=pk) for pk in missing])


class Migration(migrations.Migration):

    dependencies = [
        ('printers', '0005_file_import_moved_to_production'),
    ]

    operations = [
        migrations.AddField(
            model_name='printerlivestate',
            name='ams_units',
            field=models.JSONField(blank=True, default=list, help_text='Per AMS unit: its humidity level (1 dry … 5 wet, as Bambu Studio shows it), relative humidity, temperature and whether it is wet.', verbose_name='AMS units'),
        ),
        migrations.AddField(
            model_name='printerlivestate',
            name='nozzle_diameter_mm',
            field=models.FloatField(blank=True, null=True, verbose_name='reported nozzle diameter (mm)'),
        ),
        migrations.AddField(
            model_name='printerlivestate',
            name='nozzle_type',
            field=models.CharField(blank=True, help_text='As the printer reports it, e.g. hardened_steel or stainless_steel; empty when it does not say. Carbon- and glass-fibre filament needs a hardened nozzle.', max_length=40, verbose_name='nozzle type'),
        ),
        migrations.RunPython(add_missing_live_states, migrations.RunPython.noop),
    ]
