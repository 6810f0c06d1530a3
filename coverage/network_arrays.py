"""The street network as arrays: nodes, undirected edges with length, class, one-way rule and geometry; snaps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:  # networkx is imported where a graph is built (coverage.network), not by every run
    import networkx as nx

#: OSM ``highway`` classes with a code of their own (code = position); any other value is code 0
HIGHWAY_CLASSES: tuple[str, ...] = (
    "other", "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential",
    "living_street", "service", "road", "track", "pedestrian", "footway", "path", "steps",
    "cycleway", "bridleway", "corridor", "elevator", "busway", "ferry",
)
_HIGHWAY_CODE = {name: code for code, name in enumerate(HIGHWAY_CLASSES)}


def highway_code(value) -> int:
    """
    Code in :data:`HIGHWAY_CLASSES` of an OSM ``highway`` value (0 for any other).

    A list (osmnx's simplification merges ways of several classes) takes its
    first element, as does a GraphML string such as ``"['residential', 'tertiary']"``.
    """
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, str) and value.startswith("["):
        value = value.strip("[]").split(",")[0].strip().strip("'\"")
    return _HIGHWAY_CODE.get(value, 0) if isinstance(value, str) else 0


@dataclass(frozen=True)
class NetworkArrays:
    """
    The walking network as arrays, one row per undirected edge.

    Attributes
    ----------
    node_ids : numpy.ndarray
        Graph node ids (e.g. OSM ids), position = array index.
    node_x, node_y : numpy.ndarray
        Node coordinates in the working CRS (metres).
    edge_u, edge_v : numpy.ndarray
        Edge end positions into the node arrays; the geometry runs from u to v.
    edge_length_m : numpy.ndarray
        Edge length (metres).
    edge_ferry : numpy.ndarray
        True for ferry lines (not walkable, not snappable).
    edge_geometry : numpy.ndarray
        shapely LineStrings in the working CRS, oriented u → v.
    crs : object
        The working CRS.
    edge_highway : numpy.ndarray or None
        OSM ``highway`` class of each edge as a small int code into
        :data:`HIGHWAY_CLASSES` (0 = any other value); ``None`` when unknown
        (every edge counts as class 0).
    edge_oneway : numpy.ndarray or None
        One-way rule of each edge as the OSM way sets it (for vehicles):
        0 both ways, 1 only u → v, -1 only v → u; ``None`` when unknown (all 0).
        Walking ignores it; profiles that honour one-way streets read it.
    edge_name : numpy.ndarray or None
        OSM ``name`` of each edge's way ("" when it has none); ``None`` when unknown.
    """

    node_ids: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_ferry: np.ndarray
    edge_geometry: np.ndarray
    crs: object
    edge_highway: np.ndarray | None = None
    edge_oneway: np.ndarray | None = None
    edge_name: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return len(self.edge_u)


@dataclass(frozen=True)
class Snap:
    """
    Where points attach to the network.

    Attributes
    ----------
    edge : numpy.ndarray
        Edge position per point (-1 when off the network).
    fraction : numpy.ndarray
        Position along the edge from its u end, 0..1.
    access_m : numpy.ndarray
        Straight-line distance from the point to the edge (metres); inf when off network.
    """

    edge: np.ndarray
    fraction: np.ndarray
    access_m: np.ndarray

    @property
    def on_network(self) -> np.ndarray:
        """True where the point attached to an edge within the access limit."""
        return self.edge >= 0

    def subset(self, mask_or_index) -> Snap:
        """The snaps of a subset of points (boolean mask or positions)."""
        return Snap(self.edge[mask_or_index], self.fraction[mask_or_index], self.access_m[mask_or_index])

    def __len__(self) -> int:
        return len(self.edge)


def network_arrays(graph: nx.MultiDiGraph) -> NetworkArrays:
    """
    Turn a projected walking graph into :class:`NetworkArrays`.

    Reciprocal directed edges become one undirected edge (walking ignores
    one-way rules); parallel edges between the same nodes are all kept, each
    with its own geometry and length.

    Parameters
    ----------
    graph
        Projected graph from :func:`coverage.network.load_walk_network`.
    """
    node_ids = np.array(list(graph.nodes), dtype=np.int64)
    position = {node: i for i, node in enumerate(node_ids.tolist())}
    node_x = np.array([graph.nodes[n]["x"] for n in node_ids.tolist()], dtype=float)
    node_y = np.array([graph.nodes[n]["y"] for n in node_ids.tolist()], dtype=float)

    seen: dict = {}
    edge_u, edge_v, lengths, ferries, geometries, highways, oneways, names = [], [], [], [], [], [], [], []
    for u, v, data in graph.edges(data=True):
        pu, pv = position[u], position[v]
        geometry = data.get("geometry")
        if geometry is None:
            geometry = shapely.LineString([(node_x[pu], node_y[pu]), (node_x[pv], node_y[pv])])
        length = float(data.get("length", geometry.length))
        # the same street stored in both directions is one walkable edge
        key = (min(pu, pv), max(pu, pv), round(length, 2), round(geometry.length, 1))
        if key in seen:
            # the street met again the other way round: it is not one-way
            if edge_u[seen[key]] != pu:
                oneways[seen[key]] = 0
            continue
        seen[key] = len(edge_u)
        # only this direction seen so far (a reciprocal edge makes it two-way above)
        oneways.append(0 if pu == pv else 1)
        highways.append(highway_code(data.get("highway")))
        name = data.get("name", "")
        names.append(str(name[0] if isinstance(name, list) and name else name or ""))
        edge_u.append(pu)
        edge_v.append(pv)
        lengths.append(length)
        ferry = data.get("ferry", False)
        ferries.append(bool(any(ferry) if isinstance(ferry, list) else ferry))
        geometries.append(geometry)
    return NetworkArrays(
        node_ids=node_ids,
        node_x=node_x,
        node_y=node_y,
        edge_u=np.array(edge_u, dtype=np.int64),
        edge_v=np.array(edge_v, dtype=np.int64),
        edge_length_m=np.array(lengths, dtype=float),
        edge_ferry=np.array(ferries, dtype=bool),
        edge_geometry=np.array(geometries, dtype=object),
        crs=graph.graph.get("crs"),
        edge_highway=np.array(highways, dtype=np.int8),
        edge_oneway=np.array(oneways, dtype=np.int8),
        edge_name=np.array(names, dtype=object),
    )


def network_arrays_from_edges(
    node_x: np.ndarray,
    node_y: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    *,
    edge_ferry: np.ndarray | None = None,
    crs=None,
    edge_highway: np.ndarray | None = None,
    edge_oneway: np.ndarray | None = None,
) -> NetworkArrays:
    """
    Build :class:`NetworkArrays` straight from arrays (straight edges).

    Used for generated test and benchmark networks, without a networkx graph.

    Parameters
    ----------
    node_x, node_y
        Node coordinates (metres).
    edge_u, edge_v
        Edge ends as node positions, one row per undirected edge.
    edge_ferry
        Optional ferry flags.
    crs
        The CRS of the coordinates.
    edge_highway
        Optional highway codes (:data:`HIGHWAY_CLASSES`); default 0 for every edge.
    edge_oneway
        Optional one-way rules (0, 1 = only u → v, -1 = only v → u); default 0.
    """
    edge_u = np.asarray(edge_u, dtype=np.int64)
    edge_v = np.asarray(edge_v, dtype=np.int64)
    coords = np.stack(
        [np.column_stack([node_x[edge_u], node_y[edge_u]]), np.column_stack([node_x[edge_v], node_y[edge_v]])],
        axis=1,
    )
    geometries = shapely.linestrings(coords)
    return NetworkArrays(
        node_ids=np.arange(len(node_x), dtype=np.int64),
        node_x=np.asarray(node_x, dtype=float),
        node_y=np.asarray(node_y, dtype=float),
        edge_u=edge_u,
        edge_v=edge_v,
        edge_length_m=shapely.length(geometries),
        edge_ferry=np.zeros(len(edge_u), bool) if edge_ferry is None else np.asarray(edge_ferry, bool),
        edge_geometry=geometries,
        crs=crs,
        edge_highway=np.zeros(len(edge_u), np.int8) if edge_highway is None else np.asarray(edge_highway, np.int8),
        edge_oneway=np.zeros(len(edge_u), np.int8) if edge_oneway is None else np.asarray(edge_oneway, np.int8),
    )


def node_components(net: NetworkArrays, *, with_ferries: bool) -> np.ndarray:
    """
    Connected component label of every node.

    Parameters
    ----------
    net
        The network arrays.
    with_ferries
        Whether ferry lines join components.
    """
    keep = np.ones(net.n_edges, bool) if with_ferries else ~net.edge_ferry
    adjacency = sparse.coo_matrix(
        (np.ones(keep.sum()), (net.edge_u[keep], net.edge_v[keep])), shape=(net.n_nodes, net.n_nodes)
    )
    _, labels = connected_components(adjacency, directed=False)
    return labels


def point_components(net: NetworkArrays, snap: Snap, labels: np.ndarray) -> np.ndarray:
    """Component label of each snapped point (-1 when off the network)."""
    e = np.where(snap.on_network, snap.edge, 0)
    return np.where(snap.on_network, labels[net.edge_u[e]], -1)
