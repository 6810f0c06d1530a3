"""Write notebooks/02_your_own_data.ipynb (run from the repository root: python scripts/make_notebook_02.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# 用自己的数据 · Your own data

规划院和民政局手里的数据往往是：民政局的设施名单（Excel，标题行、合计行、每个乡镇一个工作表）、
从高德地图导出的 POI 表（GBK 编码，GCJ-02 坐标，类型是“生活服务;…”这样的分类路径），还有一份
只写了乡镇和村名、没有坐标的互助幸福院名单。本笔记本在**合成示例县**（合成示例数据 / synthetic demo data）
上按真实格式造出这三份表，然后一步步：检查（validate）→ 类型对照补充文件 → 坐标系核对 →
合并为“设施点” → 无坐标的村 → 运行评估。

Planners hold a bureau list (Excel with title rows, totals, a sheet per town), an Amap POI export (GBK,
GCJ-02, category paths as types) and a list of village mutual-aid homes without coordinates. This notebook
writes such files for the **synthetic demo county** and walks through: validate → a kinds file → the
coordinate-system check → merged sites → villages without coordinates → a run."""),
    ("code", """from pathlib import Path
import csv

import pandas as pd

from coverage import ingest, sites, validate

REPO = Path("..").resolve()
WORK = REPO / "outputs" / "notebook02"
WORK.mkdir(parents=True, exist_ok=True)
bureau_list = REPO / "data" / "facilities" / "demo_facilities.xlsx"   # the bureau's list (GCJ-02)
print(bureau_list.name)"""),
    ("md", """## 1. 民政局名单：检查 / The bureau list: validate

`validate_report` 按“类型”列的每个取值汇总：多少行、判成哪一类、或为什么不能用。
`validate_report` summarises by value of the type column: how many rows, which kind, or why not."""),
    ("code", """text, rejects, summary = validate.validate_report(bureau_list, crs="gcj02", lang="zh")
print(text)"""),
    ("md", """## 2. 高德 POI 导出表 / An Amap POI export of the same area

同一批设施又出现在高德导出表中（名称略有不同，坐标差几米），外加高德的“停车场”“东门”等附属点。
表头是高德的 `name,type,typecode,address,location,pname,cityname,adname`，GBK 编码；不指定坐标系时按高德的 GCJ-02 读。

The same facilities appear again in an Amap export (slightly different names, a few metres apart), plus
Amap's sub-points (car park, gate). No `crs` is given: an Amap export is read as GCJ-02."""),
    ("code", """bureau, _, _ = ingest.read_facilities(bureau_list, crs="gcj02")
from coverage import coords

def amap_row(name, category, lon, lat, east_m=0.0):
    glon, glat = coords.wgs84_to_gcj02(lon + east_m / 95000.0, lat)
    return [name, category, "070000", "[]", f"{float(glon):.6f},{float(glat):.6f}", "湖北省", "示例市", "示例县"]

amap_rows = [["name", "type", "typecode", "address", "location", "pname", "cityname", "adname"]]
day_care = bureau[bureau["kinds"].str.contains("day_care")].head(6)
for row in day_care.itertuples():
    # Amap calls them differently and places them 5-12 m away
    short = row.name.replace("老年人日间照料中心", "日间照料中心")
    amap_rows.append(amap_row(short, "生活服务;生活服务场所;生活服务场所", row.geometry.x, row.geometry.y, 8.0))
first = day_care.iloc[0]
amap_rows.append(amap_row(first["name"].replace("老年人日间照料中心", "长者食堂"), "餐饮服务;中餐厅;中餐厅",
                          first.geometry.x, first.geometry.y, 3.0))            # a canteen in the same building
amap_rows.append(amap_row(first["name"] + "(停车场)", "交通设施服务;停车场;停车场",
                          first.geometry.x, first.geometry.y, 40.0))           # a sub-point, not a facility
amap_export = WORK / "高德POI_示例县_养老.csv"
with open(amap_export, "w", newline="", encoding="gbk") as handle:
    csv.writer(handle).writerows(amap_rows)
text, _, amap_summary = validate.validate_report(amap_export, lang="zh")
print(text)"""),
    ("md", """## 3. 没有坐标的村级名单 / A village list without coordinates

乡镇报来的互助幸福院名单只有乡镇和村名。这些行仍然计入“行政村有互助幸福院”这类指标（仅计存在），但不计步行覆盖。
名单里还有一种本地叫法“村级养老服务站”，项目的类型对照表里没有，先看会怎样。

A town's list names only the town and village. Such rows still count for "the village has a 互助幸福院"
(presence only), never for walking reach. It also uses a local class, 村级养老服务站, which the registry
does not know."""),
    ("code", """import geopandas as gpd

units = ingest.read_units(REPO / "data" / "boundaries" / "demo_units.geojson")
towns = units[units["level"] == "town"].set_index("code")["name"]
have_mutual_aid = set(bureau.loc[bureau["kinds"].str.contains("mutual_aid"), "village_name"].dropna())
rural = units[(units["level"] == "village") & (units["urban"] == False) & ~units["name"].isin(have_mutual_aid)]
village_rows = [["序号", "所属乡镇", "所属村", "名称", "类型", "建筑面积（㎡）"]]
for i, row in enumerate(rural.head(4).itertuples(), start=1):
    kind_word = "农村幸福院" if i < 4 else "村级养老服务站"
    village_rows.append([i, towns[row.parent_code], row.name, f"{row.name}{'互助幸福院' if i < 4 else '养老服务站'}", kind_word, 120])
village_rows.append(["合计", "", "", "", "", 480])
village_list = WORK / "乡镇报送_互助幸福院名单.csv"
with open(village_list, "w", newline="", encoding="utf-8-sig") as handle:
    csv.writer(handle).writerows(village_rows)
text, village_rejects, _ = validate.validate_report(village_list, lang="zh")
print(text)"""),
    ("md", """## 4. 类型对照补充文件 / A kinds file for the local class

在 YAML 里把本地叫法加到某一类下（格式同 `coverage/kinds.yaml`），研究配置中用 `kinds:` 指定，或命令行 `--kinds`。
Add the local word under a kind in a YAML file (layout of `coverage/kinds.yaml`) and name it with `kinds:` in
the study file, or `--kinds` on the command line."""),
    ("code", """kinds_file = WORK / "本地类型对照.yaml"
kinds_file.write_text("mutual_aid:\\n  types: [村级养老服务站]\\n", encoding="utf-8")
text, village_rejects, village_summary = validate.validate_report(village_list, lang="zh", kinds_file=kinds_file)
print(text)
assert village_summary["presence_only"] == 4 and village_summary["rejected"] == 1   # only the 合计 row"""),
    ("md", """## 5. 坐标系核对 / Is the coordinate system right?

高德表若误标为 WGS-84，点位会偏 500 米左右——正好是一个服务圈的尺度。项目把各种假设下的点与研究区的步行路网比对：
哪种坐标系下点离道路最近。运行时每个文件都会核对（`parameters.crs_check: error | warn | off`）。
点很少又处在密集路网中时，任何坐标系都“贴路”，此时无法判断，文件照常使用。

An Amap list declared as WGS-84 is off by about 500 m, the size of a service circle. The check compares
the points with the study's walking network under each system; `eldercov run` does it for every file
(`parameters.crs_check: error | warn | off`). A few points in a dense street grid may fit any system:
then the check cannot tell and lets the file pass."""),
    ("code", """from coverage import crs_check, network

streets = crs_check.streets_from(network.load_walk_arrays(REPO / "data" / "demo" / "demo_walk.osm"))
# the bureau's points as a GCJ-02 file without a 坐标系 column would give them, declared as WGS-84 by mistake:
located = bureau[bureau.geometry.notna()]
gcj_lon, gcj_lat = coords.wgs84_to_gcj02(located.geometry.x.to_numpy(), located.geometry.y.to_numpy())
wrong = located.set_geometry(gpd.points_from_xy(gcj_lon, gcj_lat, crs=4326))
fit = crs_check.check_facility_crs(wrong, "wgs84", streets)
print({system: round(metres) for system, metres in fit.medians_m.items()}, "→", fit.verdict, fit.best)
try:
    crs_check.raise_if_implausible(fit, path=bureau_list, what="facilities")
except Exception as error:          # `eldercov run` stops with this message (exit 2)
    print(error)

# a handful of points in a dense street grid can fit under any system: the check then lets the file pass
amap_wrong, _, _ = ingest.read_facilities(amap_export, crs="wgs84")
print(crs_check.check_facility_crs(amap_wrong, "wgs84", streets).verdict, "for the 7 points of the Amap export")"""),
    ("md", """## 6. 合并为设施点 / Records become sites

两份名单里的同一设施合并为一处（不重复计数）；同一栋楼里的日间照料中心和长者食堂合并为一处、两个类别。
每一次合并都记在“合并记录”里。

The same facility in both lists becomes one site (not counted twice); the day-care centre and the canteen
in one building become one site with two kinds. Every merge is listed."""),
    ("code", """amap, _, _ = ingest.read_facilities(amap_export)
records = pd.concat([bureau[bureau.geometry.notna()], amap], ignore_index=True)
merged = sites.merge_sites(gpd.GeoDataFrame(records, geometry="geometry", crs=4326))
print(f"{len(records)} records → {len(merged.sites)} sites; {len(merged.merge_log)} merged")
merged.merge_log[["name", "merged_into_name", "reason", "distance_m", "name_similarity"]]"""),
    ("md", """## 7. 运行评估 / Run the study with all three lists

研究配置列出三份名单：民政局名单在前（合并时以它为准），高德表（不写坐标系，按 GCJ-02），村级名单带类型对照文件。
The study lists the three files: the bureau list first (it is the main record of a merged site), the Amap
export (no `crs`: GCJ-02), the village list with its kinds file."""),
    ("code", """import yaml
from coverage.config import load_study
from coverage.pipeline import run_study

demo = yaml.safe_load((REPO / "studies" / "demo.yaml").read_text(encoding="utf-8"))
study = demo | {"study": demo["study"] | {"name": "own_data"}}
study["inputs"] = {
    "network": str(REPO / "data" / "demo" / "demo_walk.osm"),
    "facilities": [
        {"path": str(bureau_list), "crs": "gcj02"},
        {"path": str(amap_export)},
        {"path": str(village_list), "kinds": str(kinds_file)},
    ],
    "units": {"path": str(REPO / "data" / "boundaries" / "demo_units.geojson"), "crs": "wgs84"},
    "population": demo["inputs"]["population"] | {
        "rasters": str(REPO / "data" / "demo" / "population" / "pop_*_demo.tif"),
        "census": demo["inputs"]["population"]["census"] | {"path": str(REPO / "data" / "demo" / "demo_census_60plus.csv")},
    },
}
study_file = WORK / "own_data.yaml"
study_file.write_text(yaml.safe_dump(study, allow_unicode=True, sort_keys=False), encoding="utf-8")
results = run_study(load_study(study_file, output_root=WORK / "outputs"))
counts = results.ingest_summary
print(f"rows in {counts['rows_in']} = located {counts['located']} (in {counts['sites']} sites) "
      f"+ presence-only {counts['presence_only']} + rejected {counts['rejected']}")
for note in results.notes:
    print("note:", note)"""),
    ("code", """# 无坐标的村仍计入“有互助幸福院” / villages without coordinates still count for presence
results.presence_only[["name", "village_name", "village_code", "unit_assignment", "flags"]]"""),
    ("code", """targets = results.targets
targets[targets["metric"] == "unit_presence"][["label_zh", "required", "actual", "status"]]"""),
]


def main() -> None:
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        notebook.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    path = Path("notebooks") / "02_your_own_data.ipynb"
    nbformat.write(notebook, path)
    print(path)


if __name__ == "__main__":
    main()
