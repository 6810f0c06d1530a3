"""
Time ``eldercov validate`` on a generated 100,000-row municipal registry (issue #12: < 20 s, < 2 GB).

The registry is written the way a city's elderly-service registry comes out
of the provincial platform: GBK CSV, a title row, 序号, the platform's own
classes (养老机构, 日间照料中心, 老年助餐点, 农村幸福院 …), generic classes whose
kind only the name says (养老服务设施), Amap category paths pasted from a POI
export, empty classes, a few unknown ones; 5 % of the records co-located in
multi-service buildings (same point, different kinds), 1 % placed by a failed
geocoder on the district centre, 2 % without coordinates but with their
town, and 合计 rows. Coordinates are GCJ-02.

It times, in one run and each in a fresh process (peak RSS is its own):

- ours: ``validate.validate_report`` (reading, kinds, checks, the by-type
  summary), then ``sites.detect_geocoder_fallbacks`` and ``sites.merge_sites``
  on the accepted rows — everything ``validate`` and the batch job's
  facilities stage do;
- the obvious alternative a planner's script would use: ``pandas.read_csv``
  and a keyword lookup per row with ``str.contains`` (no checks, no merge), to
  show what the checks cost on top of reading.

Run from the repository root:

    .venv/bin/python benchmarks/bench_validate.py [--rows 100000] [--out /tmp/bench_validate]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import platform
import resource
import time
from pathlib import Path

import numpy as np

#: (type cell, name suffix) pairs of the platform's classes, with their weights
OFFICIAL = [
    ("养老机构", "养老院", 10), ("日间照料中心", "社区日间照料中心", 20), ("老年助餐点", "社区老年助餐点", 15),
    ("农村幸福院", "村互助幸福院", 20), ("敬老院", "镇敬老院", 3), ("护理院", "护理院", 2),
    ("综合为老服务中心", "街道综合为老服务中心", 3), ("养老驿站", "社区养老驿站", 5), ("护理站", "居家护理站", 2),
]
GENERIC = [("养老服务设施", "社区日间照料中心"), ("其他", "村互助幸福院"), ("养老服务", "老年食堂")]
POI_PATHS = [("生活服务;生活服务场所;生活服务场所", "社区日间照料中心"), ("餐饮服务;中餐厅;中餐厅", "长者食堂"),
             ("医疗保健服务;医疗保健服务场所;医疗保健服务场所", "颐养院")]
UNKNOWN = [("老年大学", "老年大学"), ("文化活动室", "文化活动室")]


def write_registry(path: Path, rows: int, seed: int = 7) -> dict:
    """Write the registry CSV (GBK) and return what it holds by construction."""
    rng = np.random.default_rng(seed)
    centre_lon, centre_lat = 114.30, 30.60  # a district centre (GCJ-02)
    towns = [f"第{i}街道" for i in range(1, 41)]
    weights = np.array([w for *_, w in OFFICIAL], float)
    weights /= weights.sum()
    records = []
    position = 0
    colocated = fallbacks = missing = 0
    while len(records) < rows:
        i = len(records)
        town = towns[i % len(towns)]
        draw = rng.random()
        if draw < 0.70:
            type_text, suffix, _ = OFFICIAL[rng.choice(len(OFFICIAL), p=weights)]
        elif draw < 0.80:
            type_text, suffix = GENERIC[rng.integers(len(GENERIC))]
        elif draw < 0.88:
            type_text, suffix = POI_PATHS[rng.integers(len(POI_PATHS))]
        elif draw < 0.97:
            type_text, suffix = "", OFFICIAL[rng.integers(len(OFFICIAL))][1]
        else:
            type_text, suffix = UNKNOWN[rng.integers(len(UNKNOWN))]
        lon = centre_lon + rng.uniform(-0.25, 0.25)
        lat = centre_lat + rng.uniform(-0.2, 0.2)
        name = f"{town}第{i}号{suffix}"
        address = f"武汉市某区{town}{i}号"
        kind_roll = rng.random()
        if kind_roll < 0.01:
            lon, lat, fallbacks = centre_lon, centre_lat, fallbacks + 1  # the geocoder gave up
        lon_text, lat_text = f"{lon:.6f}", f"{lat:.6f}"
        if 0.01 <= kind_roll < 0.03:
            lon_text = lat_text = ""
            missing += 1
        records.append([position + 1, name, type_text, address, lon_text, lat_text, int(rng.integers(0, 200)), town])
        position += 1
        if 0.03 <= kind_roll < 0.055 and len(records) < rows:
            # a multi-service building: a second record of another kind at the same point and address
            records.append([position + 1, f"{town}第{i}号老年助餐点", "老年助餐点", address, lon_text, lat_text, "", town])
            position += 1
            colocated += 2
        if i % 5000 == 4999 and len(records) < rows:
            records.append(["合计", "", "", "", "", "", "", ""])
            position += 1
    with open(path, "w", newline="", encoding="gbk") as handle:
        writer = csv.writer(handle)
        writer.writerow(["某市养老服务机构名录（生成的基准数据）"])
        writer.writerow(["序号", "机构名称", "机构类型", "地址", "经度", "纬度", "床位数", "所属街道"])
        writer.writerows(records[:rows])
    return {"rows": rows, "colocated_records": colocated, "fallback_records": fallbacks, "no_coordinates": missing,
            "bytes": path.stat().st_size}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def _ours(path: str, queue) -> None:
    start = time.perf_counter()
    import pandas as pd

    from coverage import ingest, sites, validate

    imported = time.perf_counter()
    text, rejects, summary = validate.validate_report(path, lang="zh")
    read = time.perf_counter()
    facilities, _, _ = ingest.read_facilities(path)
    reread = time.perf_counter()
    located = facilities[facilities.geometry.notna()].reset_index(drop=True)
    reasons = sites.detect_geocoder_fallbacks(located)
    fallback_s = time.perf_counter()
    kept = located[(reasons == "").to_numpy()].reset_index(drop=True)
    merged = sites.merge_sites(kept, fallbacks=pd.Series("", index=kept.index))  # fallbacks found once, above
    merge_s = time.perf_counter()
    queue.put({
        "import_s": imported - start, "validate_s": read - imported, "read_again_s": reread - read,
        "fallbacks_s": fallback_s - reread, "merge_s": merge_s - fallback_s,
        "total_s": (read - imported) + (fallback_s - reread) + (merge_s - fallback_s),
        "peak_gb": _peak_gb(), "rows_in": summary["rows_in"], "located": summary["located"],
        "presence_only": summary["presence_only"], "rejected": summary["rejected"],
        "fallback_records": int((reasons != "").sum()), "sites": len(merged.sites),
        "merged_records": len(merged.merge_log), "report_lines": text.count("\n"),
    })


def _pandas_baseline(path: str, queue) -> None:
    start = time.perf_counter()
    import pandas as pd

    keywords = {"日间照料": "day_care", "助餐": "canteen", "食堂": "canteen", "幸福院": "mutual_aid",
                "敬老院": "nursing_home", "养老院": "care_home", "护理院": "care_home"}
    imported = time.perf_counter()
    table = pd.read_csv(path, encoding="gbk", skiprows=1, dtype=str)
    kinds = pd.Series("", index=table.index)
    text = table["机构类型"].fillna("") + table["机构名称"].fillna("")
    for word, kind in keywords.items():
        kinds = kinds.mask(text.str.contains(word, regex=False) & (kinds == ""), kind)
    done = time.perf_counter()
    queue.put({"import_s": imported - start, "total_s": done - imported, "peak_gb": _peak_gb(),
               "rows": len(table), "with_kind": int((kinds != "").sum())})


def _in_process(target, path: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(str(path), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", default="/tmp/bench_validate")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"registry_{args.rows}.csv"
    made = write_registry(path, args.rows)
    print(f"machine: {platform.machine()}, {multiprocessing.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"registry: {made['rows']:,} rows, {made['bytes'] / 1e6:.1f} MB GBK; "
          f"{made['colocated_records']:,} records in multi-service buildings, {made['fallback_records']:,} on the "
          f"district centre, {made['no_coordinates']:,} without coordinates")
    ours = _in_process(_ours, path)
    baseline = _in_process(_pandas_baseline, path)
    print(f"ours (validate + fallbacks + merge): {ours['total_s']:.1f} s "
          f"(validate {ours['validate_s']:.1f} s, fallbacks {ours['fallbacks_s']:.1f} s, merge {ours['merge_s']:.1f} s), "
          f"peak {ours['peak_gb']:.2f} GB")
    print(f"  rows in {ours['rows_in']:,} = located {ours['located']:,} + presence-only {ours['presence_only']:,} "
          f"+ rejected {ours['rejected']:,}; fallback records {ours['fallback_records']:,}; "
          f"{ours['sites']:,} sites after merging {ours['merged_records']:,} records; report {ours['report_lines']} lines")
    print(f"pandas read_csv + keyword lookup (no checks, no merge): {baseline['total_s']:.2f} s, "
          f"peak {baseline['peak_gb']:.2f} GB, {baseline['with_kind']:,} of {baseline['rows']:,} rows given a kind")
    print(f"ratio ours / baseline: {ours['total_s'] / baseline['total_s']:.1f}x")


if __name__ == "__main__":
    main()
