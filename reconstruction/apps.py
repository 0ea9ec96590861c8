from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReconstructionConfig(AppConfig):
    name = "reconstruction"
    verbose_name = _("Reconstruction")
