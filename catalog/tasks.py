"""django-q2 entry points of the catalog. Each takes ids and is safe to run twice."""

from catalog import services
from catalog.models import SlicedFile


def extract_sliced_file(sliced_file_id: int) -> str:
    sliced_file = SlicedFile.objects.filter(pk=sliced_file_id).first()
    if sliced_file is None:
        return "gone"
    return services.sliced_file_extract(sliced_file=sliced_file).status
