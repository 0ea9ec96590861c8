from printers.tests.file_fixtures import bambu, ftps_sim, printer_file_settings, prusa, prusa_sim  # noqa: F401
