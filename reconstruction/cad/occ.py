"""Small helpers around OpenCascade (OCP): tessellation, volume, validity, STEP in and out.

Imported only when a STEP file is made or measured, so the rest of the application runs
without the OpenCascade wheel.
"""

from pathlib import Path

import numpy as np
import trimesh
from OCP.BRep import BRep_Tool
from OCP.BRepAdaptor import BRepAdaptor_Surface
from OCP.BRepCheck import BRepCheck_Analyzer
from OCP.BRepGProp import BRepGProp
from OCP.BRepMesh import BRepMesh_IncrementalMesh
from OCP.GeomAbs import GeomAbs_Cone, GeomAbs_Cylinder, GeomAbs_Plane, GeomAbs_Sphere
from OCP.GProp import GProp_GProps
from OCP.IFSelect import IFSelect_RetDone
from OCP.Interface import Interface_Static
from OCP.Message import Message, Message_Gravity
from OCP.ShapeAnalysis import ShapeAnalysis_FreeBounds
from OCP.STEPControl import STEPControl_AsIs, STEPControl_Reader, STEPControl_Writer
from OCP.TopAbs import TopAbs_EDGE, TopAbs_FACE, TopAbs_REVERSED, TopAbs_SHELL, TopAbs_SOLID
from OCP.TopExp import TopExp_Explorer
from OCP.TopLoc import TopLoc_Location
from OCP.TopoDS import TopoDS, TopoDS_Shape

SURFACE_KINDS = {GeomAbs_Plane: "plane", GeomAbs_Cylinder: "cylinder", GeomAbs_Sphere: "sphere",
                 GeomAbs_Cone: "cone"}


def faces(shape: TopoDS_Shape) -> list:
    found, explorer = [], TopExp_Explorer(shape, TopAbs_FACE)
    while explorer.More():
        found.append(TopoDS.Face(explorer.Current()))
        explorer.Next()
    return found


def count(shape: TopoDS_Shape, kind) -> int:
    explorer, n = TopExp_Explorer(shape, kind), 0
    while explorer.More():
        n += 1
        explorer.Next()
    return n


def surface_of(face) -> tuple[str, dict]:
    """The kind of a face's surface and its parameters (plane normal, cylinder axis and radius)."""
    adaptor = BRepAdaptor_Surface(face)
    kind = SURFACE_KINDS.get(adaptor.GetType(), "other")
    params: dict = {}
    if kind == "plane":
        axis = adaptor.Plane().Axis().Direction()
        params["normal"] = np.array([axis.X(), axis.Y(), axis.Z()])
    elif kind == "cylinder":
        cylinder = adaptor.Cylinder()
        axis, location = cylinder.Axis().Direction(), cylinder.Location()
        params.update(axis=np.array([axis.X(), axis.Y(), axis.Z()]), radius=cylinder.Radius(),
                      point=np.array([location.X(), location.Y(), location.Z()]))
    elif kind == "sphere":
        params["radius"] = adaptor.Sphere().Radius()
    return kind, params


def tessellate(shape: TopoDS_Shape, *, deflection: float = 0.02, angle: float = 0.1) -> tuple[trimesh.Trimesh, list]:
    """The shape as one triangle mesh, and for each triangle the index of the face it came from."""
    BRepMesh_IncrementalMesh(shape, deflection, False, angle, True)
    vertices, triangles, labels, offset = [], [], [], 0
    for index, face in enumerate(faces(shape)):
        location = TopLoc_Location()
        triangulation = BRep_Tool.Triangulation_s(face, location)
        if triangulation is None:
            continue
        transform = location.Transformation()
        points = (triangulation.Node(i).Transformed(transform) for i in range(1, triangulation.NbNodes() + 1))
        nodes = np.array([[p.X(), p.Y(), p.Z()] for p in points])
        tris = np.array([triangulation.Triangle(i).Get() for i in range(1, triangulation.NbTriangles() + 1)]) - 1
        if face.Orientation() == TopAbs_REVERSED:
            tris = tris[:, ::-1]
        vertices.append(nodes)
        triangles.append(tris + offset)
        labels.extend([index] * len(tris))
        offset += len(nodes)
    if not vertices:
        return trimesh.Trimesh(), []
    mesh = trimesh.Trimesh(np.vstack(vertices), np.vstack(triangles), process=False)
    mesh.merge_vertices(digits_vertex=6)
    return mesh, labels


def volume(shape: TopoDS_Shape, *, signed: bool = False) -> float:
    props = GProp_GProps()
    BRepGProp.VolumeProperties_s(shape, props)
    return props.Mass() if signed else abs(props.Mass())


def area(face) -> float:
    props = GProp_GProps()
    BRepGProp.SurfaceProperties_s(face, props)
    return props.Mass()


def is_valid(shape: TopoDS_Shape, *, geometry: bool = True) -> bool:
    """BRepCheck's verdict; without `geometry` only the topology is checked (much faster)."""
    return BRepCheck_Analyzer(shape, geometry).IsValid()


def is_closed(shape: TopoDS_Shape) -> bool:
    """A solid whose shells have no free edges (each edge bounds exactly two faces)."""
    if count(shape, TopAbs_SOLID) < 1 or count(shape, TopAbs_SHELL) < 1:
        return False
    analysis = ShapeAnalysis_FreeBounds(shape, 1e-3, False, False)
    return count(analysis.GetOpenWires(), TopAbs_EDGE) == 0 and count(analysis.GetClosedWires(), TopAbs_EDGE) == 0


def _quiet() -> None:
    """Keep OpenCascade's transfer statistics out of the console and the worker's log."""
    for printer in Message.DefaultMessenger_s().Printers():
        printer.SetTraceLevel(Message_Gravity.Message_Fail)


def write_step(shape: TopoDS_Shape, path: Path) -> None:
    _quiet()
    writer = STEPControl_Writer()
    Interface_Static.SetCVal_s("write.step.schema", "AP214IS")
    Interface_Static.SetCVal_s("write.step.unit", "MM")
    if writer.Transfer(shape, STEPControl_AsIs) != IFSelect_RetDone:
        raise OSError("the solid could not be translated to STEP")
    if writer.Write(str(path)) != IFSelect_RetDone:
        raise OSError(f"could not write {path}")


def read_step(path: Path) -> TopoDS_Shape:
    _quiet()
    reader = STEPControl_Reader()
    if reader.ReadFile(str(path)) != IFSelect_RetDone:
        raise OSError(f"{path} is not a readable STEP file")
    reader.TransferRoots()
    return reader.OneShape()
