# Downloads into the catalog are production's work now: production's first migration copied the
# rows of this table into its own PrinterFileImport, so the old model goes.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('printers', '0004_file_import'),
        ('production', '0001_printer_file_import'),
    ]

    operations = [
        migrations.DeleteModel(
            name='PrinterFileImport',
        ),
    ]
