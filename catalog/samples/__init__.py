"""Sample sliced files the project makes itself, for the demo catalog.

Meshes are built with trimesh (`shapes`), sliced into layers of perimeters and
infill (`toolpath`), and written the way three slicers write their files:

- `prusa.write_gcode`: PrusaSlicer-style ASCII G-code with PNG thumbnails, statistics and settings;
- `prusa.write_bgcode`: PrusaSlicer binary G-code (.bgcode) with CRC32-checked blocks;
- `bambu.write_3mf`: a Bambu Studio / OrcaSlicer-style sliced 3MF with plate G-code and its MD5,
  slice_info.config, project_settings.config and plate pictures.

Every figure a file states (filament length and grams per slot, print time, layer
count, object height) is counted from the moves the file contains; see `toolpath`
for the rules. The same job gives the same bytes on every run.

    from catalog.samples import build_file, sample_models
    for model in sample_models():
        for variant in model.variants:
            for version in variant.versions:
                sample = build_file(version)  # sample.name, sample.data, sample.stats
"""

from catalog.samples.library import (
    SampleFile,
    SampleModel,
    SampleVariant,
    SampleVersion,
    build_file,
    model_picture,
    sample_models,
)

__all__ = [
    "SampleFile", "SampleModel", "SampleVariant", "SampleVersion", "build_file", "model_picture", "sample_models",
]
