"""What a run writes of its accessibility results: 可达性 / 公平性 / 设施负荷 tables, grid layer, raster, Lorenz figures."""

from __future__ import annotations

import functools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._io import atomic_path
from coverage._threads import default_threads

__all__ = ["access_layers", "access_sheets", "csv_tables", "load_text", "with_facility_load", "write_access_files"]

SYNTHETIC_LABEL = "合成示例数据 / synthetic demo data"



def _access(results):
    return getattr(results, "accessibility", None)


def access_sheets(results) -> dict[str, pd.DataFrame]:
    """The workbook's 可达性 (per town), 公平性 (Gini, Theil, Lorenz points) and 设施负荷 sheets; none when not computed."""
    acc = _access(results)
    if acc is None or not acc.kinds:
        return {}
    return {"可达性": acc.by_unit, "公平性": acc.equity, "设施负荷": acc.crowding}


def csv_tables(results) -> dict[str, pd.DataFrame]:
    """The same tables as CSV files: accessibility.csv, equity.csv, facility_load.csv."""
    sheets = access_sheets(results)
    names = {"可达性": "accessibility.csv", "公平性": "equity.csv", "设施负荷": "facility_load.csv"}
    return {names[k]: v for k, v in sheets.items()}


def load_text(row: pd.Series) -> str:
    """One facility's crowding in words for a map popup: load against the study, places and persons assigned."""
    use = str(row["use"])
    util = row["utilisation"]
    util_text = f"，利用率 {util:.0%}" if np.isfinite(util) else ""
    return (f"负荷 {row['relative_load']:.2f}×全域（{use}）；{row['demand_in_reach']:,.0f} 位老人在步行范围内，"
            f"可服务 {row['places']:,.0f} 人，已分配 {row['assigned']:,.0f} 人{util_text}")


def with_facility_load(results, facilities: pd.DataFrame) -> pd.DataFrame:
    """The facilities with one ``load_<kind>`` text column per measured kind (for the map popups and layers)."""
    acc = _access(results)
    if acc is None or not acc.kinds or "facility_id" not in facilities:
        return facilities
    out = facilities.copy()
    for kind in acc.kinds:
        part = acc.crowding[acc.crowding["kind"] == kind]
        texts = {fid: load_text(row) for fid, (_, row) in zip(part["facility_id"], part.iterrows())}
        out[f"load_{kind}"] = out["facility_id"].map(texts)
    return out


def access_layers(results) -> dict[str, gpd.GeoDataFrame]:
    """
    The ``accessibility`` layer of the GeoPackage for demand points off a grid (one point each), WGS-84.

    Demand on a population grid gets no layer: :func:`write_access_raster`
    writes the same values per cell (124,000 cell points of a county would
    add about 28 MB to the GeoPackage for what the raster shows in 3 MB).

    Columns ``elderly`` and per kind ``access_<kind>`` (2SFCA score),
    ``served_<kind>`` and ``unmet_<kind>`` (persons, capacity-aware).
    """
    from coverage import gridded

    acc = _access(results)
    if acc is None or not acc.kinds:
        return {}
    demand = results.demand_projected
    if gridded.demand_grid(demand) is not None:
        return {}  # a population grid: the raster (access_2sfca.tif) holds these per cell, points would repeat it
    columns = {"demand_id": demand["demand_id"].to_numpy() if "demand_id" in demand else np.arange(len(demand)),
               "elderly": demand["elderly"].to_numpy(float)}
    for kind, ka in acc.kinds.items():
        columns[f"access_{kind}"] = ka.score
        columns[f"served_{kind}"] = ka.served
        columns[f"unmet_{kind}"] = ka.unmet
    layer = gpd.GeoDataFrame(columns, geometry=demand.geometry.to_numpy(), crs=demand.crs).to_crs("EPSG:4326")
    if results.config.synthetic:
        layer["data_label"] = SYNTHETIC_LABEL
    return {"accessibility": layer}


def write_access_raster(results, path: str | Path) -> Path | None:
    """
    The 2SFCA score and the unmet persons on the population grid as a tiled GeoTIFF, or None without a grid.

    Bands: the score of each kind, then the capacity-aware unmet older
    persons of each kind (cell sums), in the order of ``accessibility.kinds``.

    A cell holding several demand points takes their population-weighted
    mean; cells where nobody lives are nodata (:data:`coverage.gridded.NODATA`).
    """
    import rasterio

    from coverage import gridded

    acc = _access(results)
    grid = gridded.demand_grid(results.demand_projected) if acc is not None and acc.kinds else None
    if grid is None:
        return None
    elderly = results.demand_projected["elderly"].to_numpy(float)
    has = grid.has_demand()
    weight = grid.cell_sum(elderly)
    bands, names = [], []
    for kind, ka in acc.kinds.items():
        total = grid.cell_sum(elderly * ka.score)
        mean = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
        bands.append(np.where(has, mean, gridded.NODATA).astype(np.float32))
        names.append(f"{kind}: 2SFCA accessibility ({ka.supply.unit} per older person, {acc.minutes:g} min)")
    for kind, ka in acc.kinds.items():
        bands.append(np.where(has, grid.cell_sum(np.asarray(ka.unmet, float)), gridded.NODATA).astype(np.float32))
        names.append(f"{kind}: unmet older persons (capacity-aware, {acc.minutes:g} min)")
    path = Path(path)
    profile = {"driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": len(bands),
               "dtype": "float32", "crs": grid.crs, "transform": grid.transform, "nodata": gridded.NODATA,
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "DEFLATE",
               "num_threads": str(default_threads())}  # tiles compressed on the usable cores: the same bytes
    if grid.shape[0] < 256 or grid.shape[1] < 256:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.stack(bands))
            for index, name in enumerate(names, start=1):
                dst.set_band_description(index, name)
            tags = {"units": "supply per older person (2SFCA)", "minutes": f"{acc.minutes:g}",
                    "cell_rule": "several demand points in a cell: population-weighted mean"}
            if results.config.synthetic:
                tags["data_label"] = SYNTHETIC_LABEL
            dst.update_tags(**tags)
    return path


def _lorenz_title(kind: str, minutes: float, gini: float, *, lang: str, synthetic: bool) -> str:
    """The title of a kind's Lorenz figure, naming its Gini coefficient (and the synthetic label)."""
    if lang == "zh":
        from coverage.report import KIND_ZH

        title = f"{KIND_ZH.get(kind, kind)}：{minutes:g}分钟 2SFCA 可达性洛伦兹曲线（基尼系数 {gini:.3f}）"
    else:
        title = f"{kind}: Lorenz curve of 2SFCA accessibility, {minutes:g} min (Gini {gini:.3f})"
    return f"{title}\n{SYNTHETIC_LABEL}" if synthetic else title


def write_access_files(results, out: str | Path, *, lang: str = "zh", figures: bool = True) -> dict[str, Path]:
    """The 2SFCA raster and, with ``figures``, one Lorenz-curve PNG per kind (urban and rural curves beside the whole)."""
    from coverage import equity
    from coverage.access_tables import _urban_labels

    acc = _access(results)
    if acc is None or not acc.kinds:
        return {}
    out = Path(out)
    config = results.config
    files: dict[str, Path] = {}
    raster = write_access_raster(results, out / f"{config.name}_access_2sfca.tif")
    if raster is not None:
        files["access_2sfca.tif"] = raster
    if not figures:
        return files
    demand = results.demand_projected
    elderly = demand["elderly"].to_numpy(float)
    labels = _urban_labels(demand)
    curves, names = [], []
    for kind, ka in acc.kinds.items():
        name = f"lorenz_{kind}.png"
        names.append(name)
        # the title names the Gini the figure draws (lorenz_figures computes it from the curve it draws)
        title = functools.partial(_lorenz_title, kind, acc.minutes, lang=lang, synthetic=config.synthetic)
        curves.append((np.clip(ka.score, 0, None), out / f"{config.name}_{name}", title))
    files.update(zip(names, equity.lorenz_figures(curves, elderly, groups=labels, lang=lang)))
    return files
