"""The rendered scenes of CAD parts on tables: known geometry, a table that fills the view, changing light."""

import numpy as np
import pytest
from PIL import Image

from reconstruction import synthetic


@pytest.mark.parametrize("name", synthetic.PARTS)
def test_every_part_is_a_closed_solid_of_80_mm_standing_on_the_table(name):
    part = synthetic.make_part(name)
    assert part.is_watertight and part.volume > 0
    assert max(part.extents) == pytest.approx(synthetic.PART_LONGEST_MM, abs=1e-6)
    assert part.bounds[0][2] == pytest.approx(0, abs=1e-9)


def test_the_holes_go_through():
    block = synthetic.make_part("holes")
    assert block.volume == pytest.approx(80 * 50 * 30 - 30 * np.pi * (2 * 5**2 + 8**2) - 80 * np.pi * 4**2
                                         + 2 * 8 * 2 * 4 * 4 * np.pi / 2, rel=0.03)
    assert block.euler_number < 0  # a solid with through-holes has handles


def test_a_large_table_fills_the_photos_and_the_truth_is_the_part_alone(tmp_path):
    truth = synthetic.render_table_set(tmp_path, part="shaft", table="large", texture="wood", views=3, size=160)
    assert max(truth.mesh().extents) == pytest.approx(80, abs=1e-6)  # the part, not the table
    images = [np.asarray(Image.open(truth.photos_dir / name).convert("RGB"), float) / 255 for name in truth.poses]
    for image in images:
        background = np.all(np.abs(image - synthetic.BACKGROUND) < 0.02, axis=2)
        # the lowest rows (nearest the camera) are all table; the sky above its far edge may be background
        assert background[-40:].mean() < 0.01
    brightness = [image[-40:].mean() for image in images]
    assert max(brightness) - min(brightness) > 0.01  # the light changes between photos
    centres = np.array(list(truth.centres().values()))
    assert (centres[:, 2] > 0).all()  # every camera above the table


def test_unknown_parts_tables_and_textures_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown part"):
        synthetic.make_part("gear")
    with pytest.raises(ValueError, match="unknown table"):
        synthetic.render_table_set(tmp_path, table="huge")
    with pytest.raises(ValueError, match="unknown table texture"):
        synthetic.TableTexture("marble")
