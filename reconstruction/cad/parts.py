"""Machined parts of known geometry, built with OpenCascade, for tests and the benchmark.

Each part is an exact solid; `truth_mesh()` tessellates it finely and remembers, for each
triangle, which surface it lies on, so a fitted STEP can be scored face by face.
"""

from OCP.BRepAlgoAPI import BRepAlgoAPI_Cut, BRepAlgoAPI_Fuse
from OCP.BRepPrimAPI import BRepPrimAPI_MakeBox, BRepPrimAPI_MakeCylinder
from OCP.gp import gp_Ax2, gp_Dir, gp_Pnt


def _box(x, y, z, dx, dy, dz):
    return BRepPrimAPI_MakeBox(gp_Pnt(x, y, z), dx, dy, dz).Shape()


def _cylinder(x, y, z, radius, height, direction=(0, 0, 1)):
    return BRepPrimAPI_MakeCylinder(gp_Ax2(gp_Pnt(x, y, z), gp_Dir(*direction)), radius, height).Shape()


def _cut(shape, *tools):
    for tool in tools:
        shape = BRepAlgoAPI_Cut(shape, tool).Shape()
    return shape


def box():
    """A plain 40 × 30 × 20 mm block."""
    return _box(0, 0, 0, 40, 30, 20)


def block_with_hole():
    """A 40 × 30 × 20 mm block with one Ø 10 mm through-hole."""
    return _cut(box(), _cylinder(20, 15, -1, 5, 22))


def block_with_holes():
    """An 80 × 50 × 20 mm block with a Ø 24 mm bore and two Ø 6 mm through-holes."""
    return _cut(_box(0, 0, 0, 80, 50, 20), _cylinder(40, 25, -1, 12, 22), _cylinder(12, 12, -1, 3, 22),
                _cylinder(68, 38, -1, 3, 22))


def l_bracket():
    """An 80 mm L-bracket, 8 mm thick, 40 mm wide, with a Ø 8.5 mm hole in each leg."""
    base = BRepAlgoAPI_Fuse(_box(0, 0, 0, 80, 40, 8), _box(0, 0, 0, 8, 40, 50)).Shape()
    return _cut(base, _cylinder(50, 20, -1, 4.25, 10), _cylinder(-1, 20, 32, 4.25, 10, (1, 0, 0)))


def flange():
    """An Ø 80 mm flange, 12 mm thick, a Ø 24 mm bore and four Ø 6.6 mm holes on a 60 mm bolt circle."""
    holes = [_cylinder(40 + dx, 40 + dy, -1, 3.3, 14) for dx, dy in ((30, 0), (0, 30), (-30, 0), (0, -30))]
    return _cut(_cylinder(40, 40, 0, 40, 12), _cylinder(40, 40, -1, 12, 14), *holes)


PARTS = {"block with holes": block_with_holes, "L-bracket": l_bracket, "flange": flange}
