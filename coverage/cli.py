"""Command line: ``eldercov run|validate|site|region|make-demo`` (also ``python -m coverage``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from coverage._errors import CoverageError
from coverage.kinds import kind_ids


def _study_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _walks(mode: str) -> bool:
    """Whether a ``mode`` of the coverage table is walking alone (``walk_elderly``, not ``drive`` or ``walk_elderly+drive``)."""
    return str(mode).startswith("walk") and "+" not in str(mode)


def _summary_lines(results) -> list[str]:
    """A one-screen summary of a finished study run."""
    from coverage.outputs import headline_minutes
    from coverage.report import KIND_ZH

    config = results.config
    minutes = headline_minutes(results)
    wide = results.coverage_wide
    study = wide[wide["scope"] == "study"].set_index("kind")
    column = f"share_{minutes:g}min"
    lines = [
        "",
        f"== {config.title}",
    ]
    if config.synthetic:
        lines.append("   合成示例数据 / synthetic demo data")
    summary = results.ingest_summary
    # the terms add up to rows in: records not open today (在建 / 规划 / 停业) are a term of their own
    not_open = summary.get("not_open", 0)
    not_open_text = f"+ {not_open} not open today 未投用 " if not_open else ""
    lines.append(
        f"   facilities 设施: {summary['rows_in']} rows in = {summary.get('located', summary['accepted'])} located "
        f"+ {summary.get('presence_only', 0)} presence-only 仅计存在 + {summary['rejected']} rejected → rejects.csv "
        f"{not_open_text}({summary['fixed']} fixed or inferred 自动修正/推断)"
    )
    demand = results.demand_projected
    elderly = demand["elderly"].sum()
    if demand["row"].notna().all():
        where = f"{len(demand[['row', 'col']].drop_duplicates()):,} populated grid cells"
    else:
        where = f"{len(demand):,} demand points ({', '.join(sorted(set(demand['method'].astype(str))))})"
    lines.append(f"   {config.population.age_group} population 老年人口: {elderly:,.0f} persons in {where}")
    lines.append(f"   share within {minutes:g} min walk at {config.parameters.walk_speed_mps:g} m/s "
                 f"/ {minutes:g}分钟步行覆盖率:")
    from coverage import ingest

    all_walk = "mode" not in study or all(_walks(mode) for mode in study["mode"])
    for kind in study.index:
        share = study.loc[kind, column]
        # a kind the study has no facility of (an urban district has no 互助幸福院) is 0 % and says why
        located = kind == "any" or ingest.has_kind(results.facilities, kind).any()
        presence = getattr(results, "presence_only", None)
        unplaced = not located and presence is not None and len(presence) and ingest.has_kind(presence, kind).any()
        note = "" if located else ("  无坐标设施，不计步行 / only facilities without coordinates" if unplaced
                                   else "  无设施 / no facility of this kind")
        # the travel mode, when some kind does not walk (kind_profiles: nursing_home: drive)
        mode = study.loc[kind, "mode"] if "mode" in study else ""
        marker = f" ({mode})" if mode and not all_walk and not _walks(mode) else ""
        lines.append(f"     {KIND_ZH.get(kind, kind):<14} {kind:<14} {share:7.1%}{marker}{note}")
    if len(results.targets):
        met = (results.targets["status"] == "pass").sum()
        failed = (results.targets["status"] == "fail").sum()
        nodata = (~results.targets["status"].isin(["pass", "fail"])).sum()
        lines.append(f"   targets 指标: {met} pass 达标, {failed} fail 未达标, {nodata} no data 无数据")
    for note in results.notes:
        lines.append(f"   note: {note}")
    lines.append(f"   outputs 输出: {config.output_dir}")
    return lines


def _cmd_run(args) -> int:
    from coverage.config import load_study, with_kinds_file
    from coverage.pipeline import run_study

    combined = []
    for study_file in _study_files(args.studies):
        config = load_study(study_file, output_root=args.out)
        if args.kinds:
            config = with_kinds_file(config, args.kinds)
        if config.scenarios:  # a mistake in the scenarios: block stops here, before the long stages
            from coverage.scenarios import parse_scenarios

            parse_scenarios(config)
        print(f"running {config.name} ({study_file})", flush=True)
        from coverage import timeline

        # facilities in time: --as-of evaluates one year, --years adds the trajectory (年度进展)
        results = run_study(config, lang=args.lang, make_map=not args.no_map, progress=not args.quiet,
                            echo=None if args.quiet else print, as_of=args.as_of,
                            years=timeline.parse_years(args.years))
        print("\n".join(_summary_lines(results)), flush=True)
        if results.trajectory is not None:
            from coverage import year_outputs

            print("\n".join(year_outputs.trajectory_lines(results.trajectory)), flush=True)
        if config.scenarios:
            _run_scenarios(config, results, args)
        combined.append(results)
    if len(combined) > 1:
        from coverage import report

        import pandas as pd

        frames = []
        for results in combined:
            table = results.coverage_wide[results.coverage_wide["scope"] != "town"].copy()
            table.insert(0, "study", results.config.name)
            frames.append(table)
        out_root = Path(args.out or Path.cwd() / "outputs")
        path = report.write_csv(pd.concat(frames, ignore_index=True), out_root / "combined_overview.csv",
                                lang=args.lang, synthetic=any(r.config.synthetic for r in combined))
        print(f"combined overview of {len(combined)} studies: {path}")
    return 0


def _run_scenarios(config, results, args) -> None:
    """A study with a ``scenarios:`` block: baseline and every scenario compared, 情景对比 written."""
    from coverage import scenario_outputs, scenarios

    # the run's results are the baseline; the scenarios are evaluated in the same year (--as-of)
    comparison = scenarios.run_scenarios(config, baseline=results, as_of=getattr(args, "as_of", None),
                                         echo=None if args.quiet else print)
    files = scenario_outputs.write_scenarios(comparison, lang=args.lang, make_map=not args.no_map)
    print("\n".join(scenario_outputs.scenario_summary_lines(comparison, files)), flush=True)


def _column_mapping(pairs: list[str]) -> dict[str, str] | None:
    """``["站点名=name", …]`` from the command line as a header → field mapping."""
    mapping = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip() or not target.strip():
            raise CoverageError(f"--column '{pair}': write HEADER=FIELD, e.g. --column 站点名=name "
                                "/ 写成“表头=字段”")
        mapping[header.strip()] = target.strip()
    return mapping or None


def _cmd_validate(args) -> int:
    from coverage import ingest, validate

    sheet = int(args.sheet) if args.sheet is not None and args.sheet.isdigit() else args.sheet
    text, rejects, summary = validate.validate_report(args.file, crs=args.crs, kinds_file=args.kinds, sheet=sheet,
                                                    columns=_column_mapping(args.column))
    print(text)
    rejects_path = Path(args.rejects) if args.rejects else Path(args.file).with_name(Path(args.file).stem + "_rejects.csv")
    ingest.write_rejects(rejects, rejects_path)
    print(f"rejects file / 剔除记录: {rejects_path}")
    return 0


def _cmd_site(args) -> int:
    from coverage import docx_report, proposal_outputs, proposals
    from coverage.config import load_study

    if args.per_year is not None or args.budget is not None:
        return _cmd_site_phased(args)
    if not args.three_tier and args.add is None and args.target is None:
        raise SystemExit("site: give --add N, --target SHARE, or --three-tier")
    config = load_study(args.study, output_root=args.out)
    if args.three_tier:
        plan = proposals.three_tier_plan(config, village_target_share=args.target if args.target else 1.0,
                                         village_minutes=args.village_minutes, echo=print)
        files = proposal_outputs.write_three_tier_plan(plan, config)
        labels = {1: "县级养老机构 / county institution", 2: "乡镇敬老院 / township nursing home",
                  3: "村互助幸福院 / village mutual-aid home"}
        for tier, group in plan.groupby("tier"):
            print(f"\n== tier {tier}: {labels[tier]}: {int(group['has_now'].sum())} of {len(group)} have one; "
                  f"build {int(group['build'].sum())}")
            for record in group[group["build"]].to_dict("records"):
                where = f" at {record['site']}" if record["site"] and record["site"] != record["name"] else ""
                parent = f"{record['parent_name']}·" if record["parent_name"] else ""
                print(f"   build 建议新建: {parent}{record['name']}{where}")
        print(f"\n   table: {files['three_tier_plan.csv']}")
        return 0
    if args.villages:
        if args.target is None:
            raise SystemExit("--villages needs --target (share of villages, e.g. 0.6)")
        table = proposals.propose_village_sites(config, kind=args.kind, target_share=args.target,
                                                minutes=args.village_minutes, echo=print)
        files = proposal_outputs.write_village_siting(table, config)
        info = table.attrs
        units = "villages" if info["rural_only"] else "villages and communities 村(社区)"
        print(f"\n== {units} covered by {info['kind']}: {info['share_before']:.1%} now → {info['share_after']:.1%} "
              f"with {info['new_sites']} new ({proposal_outputs.method_words(info['method'], info['status'])}); "
              f"target {info['target_share']:.0%}")
        for record in table[table["build"]].to_dict("records"):
            print(f"   build in 建议新建: {record['town_name']}·{record['name']} ({record['code']})")
        csv_name = f"village_siting_{info['kind']}.csv"
        print(f"   table: {files[csv_name]}")
        return 0
    if args.capacity is not None or args.objective != "coverage":
        # new facilities of a given size (capacitated MCLP / fewest sites) or the p-median
        from coverage import proposals_capacitated

        proposal = proposals_capacitated.propose_capacitated_sites(
            config, kind=args.kind, capacity=args.capacity, add=args.add, target_share=args.target,
            objective=args.objective, minutes=args.minutes, candidate_spacing_m=args.spacing,
            candidates_file=args.candidates, candidates_crs=args.candidates_crs,
            only_candidates=args.only_candidates, m2_per_place=args.m2_per_place, echo=print)
        files = proposals_capacitated.write_capacitated_proposal(proposal)
        print("\n".join(proposals_capacitated.summary_lines(proposal, files)))
        return 0
    if args.gap is not None and not 0 <= args.gap < 1:
        raise CoverageError(f"site --gap {args.gap:g}: give a share between 0 and 1, e.g. 0.005 for 0.5 % "
                            f"/ 请给出 0 到 1 之间的比例")
    proposal = proposals.propose_sites(
        config, kind=args.kind, add=args.add, target_share=args.target, minutes=args.minutes, mip_rel_gap=args.gap,
        candidate_spacing_m=args.spacing, candidates_file=args.candidates,
        candidates_crs=args.candidates_crs, only_candidates=args.only_candidates, echo=print,
    )
    files = proposal_outputs.write_proposal(proposal)
    # the run's Word report gains the proposal's section when the run wrote one
    report_path = Path(config.output_dir) / docx_report.report_file_name_for(config)
    if report_path.exists():
        files["report.docx"] = docx_report.add_siting_section(report_path, proposal)
    print("\n".join(proposal_outputs.summary_lines(proposal, files)))
    return 0


def _cmd_site_phased(args) -> int:
    """``site --per-year N --years 2025-2027`` or ``--budget "2025:2,2026:3"``: which sites open in which year."""
    from coverage import phased_outputs, phased_plan
    from coverage.config import load_study

    if args.per_year is not None and args.budget is not None:
        raise CoverageError("site: give --per-year N with --years, or --budget \"2025:2,2026:3\", not both "
                            "/ 每年数量与分年预算只能选一种")
    if args.add is not None or args.three_tier or args.villages:
        raise CoverageError("site: --per-year / --budget plan several years; leave out --add, --three-tier and "
                            "--villages / 分年度选址不与 --add 等同用")
    if args.per_year is not None:
        if args.years is None:
            raise CoverageError("site --per-year N needs --years, e.g. --years 2025-2027 / 请用 --years 指定年份")
        years, budgets = phased_plan.parse_years(args.years), args.per_year
    else:
        years, budgets = phased_plan.parse_budget(args.budget, phased_plan.parse_years(args.years)
                                                  if args.years else None)
    config = load_study(args.study, output_root=args.out)
    plan = phased_plan.propose_phased_sites(
        config, kind=args.kind, years=years, budgets=budgets, total=args.total, target_share=args.target,
        minutes=args.minutes, candidate_spacing_m=args.spacing, candidates_file=args.candidates,
        candidates_crs=args.candidates_crs, only_candidates=args.only_candidates, echo=print)
    files = phased_outputs.write_phased_plan(plan)
    print("\n".join(phased_outputs.phased_summary_lines(plan, files)))
    return 0


def _cmd_region(args) -> int:
    """``eldercov region``: every area of a region study, on Dask; exit 3 when an area failed."""
    from coverage.region import load_region
    from coverage.region_run import run_region

    region = load_region(args.study, output_root=args.out)
    print(f"region {region.study.name}: {len(region.areas)} areas ({region.areas_source}) → {region.output_dir}",
          flush=True)
    if region.study.synthetic:
        print("   合成示例数据 / synthetic demo data")
    results = run_region(region, scheduler=args.scheduler, n_workers=args.workers, force=args.force,
                         lang=args.lang, make_map=not args.no_map, serial=args.serial, progress=not args.quiet,
                         echo=print)
    done = sum(o.status == "done" for o in results.outcomes)
    print(f"   {done} computed, {len(results.skipped)} skipped (current), {len(results.failed)} failed "
          f"in {results.seconds:.1f} s / 计算 {done} 个，跳过 {len(results.skipped)} 个，失败 {len(results.failed)} 个")
    for name in ("region.xlsx", "region_map.html", "region_run.json"):
        if name in results.output_files:
            print(f"   {name}: {results.output_files[name]}")
    if len(results.failed):
        print("\nfailed areas / 失败区域:", file=sys.stderr)
        for row in results.failed.itertuples():
            first = str(row.message).splitlines()[0] if row.message else ""
            print(f"   {row.code} {row.name} [{row.stage}]: {first}", file=sys.stderr)
        return 3
    return 0


def _cmd_make_demo(args) -> int:
    from coverage import demo

    written = demo.make_demo(Path(args.root))
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eldercov`` command."""
    parser = argparse.ArgumentParser(
        prog="eldercov",
        description="Walking coverage of elderly-care facilities / 养老服务设施步行覆盖评估",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one or more studies (YAML files or a folder of them)")
    run.add_argument("studies", nargs="+", help="study configuration file(s) or folder(s)")
    run.add_argument("--lang", choices=["zh", "en"], default="zh", help="table headers (default zh)")
    run.add_argument("--out", default=None, help="output root folder (default ./outputs)")
    run.add_argument("--no-map", action="store_true", help="skip the HTML map and PNG figure")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--kinds", default=None,
                     help="YAML of extra type names per kind for every facility file without its own "
                          "(inputs.facilities[].kinds) / 类型对照补充文件")
    run.add_argument("--years", default=None,
                     help="also the trajectory over these years, e.g. 2020-2026: coverage and targets year by year "
                          "from the facilities' opening years (建成年份), written as <study>_年度进展.xlsx / 分年度进展")
    run.add_argument("--as-of", type=int, default=None, dest="as_of",
                     help="evaluate the facilities open in this year (建成年份 ≤ year, not closed); default: as "
                          "listed (在建 / 规划 / 停业 not counted) / 按某年已建成设施评估")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a facility table and write its rejects file")
    validate.add_argument("file", help="facility table (.xlsx, .xls, .csv, .geojson, .gpkg, .shp)")
    validate.add_argument("--crs", default=None, choices=["wgs84", "gcj02", "bd09", "cgcs2000"],
                          help="coordinate system of the lon/lat columns (高德/腾讯 gcj02, 百度 bd09); default: "
                               "the service's own for an Amap/Baidu/Tencent POI export, else wgs84")
    validate.add_argument("--kinds", default=None,
                          help="YAML of extra type names per kind (layout of coverage/kinds.yaml) / 类型对照补充文件")
    validate.add_argument("--sheet", default=None,
                          help="sheet name or number; 'all' reads every sheet (one sheet per town)")
    validate.add_argument("--column", action="append", default=[], metavar="HEADER=FIELD",
                          help="map a header to a field, e.g. --column 站点名=name (repeatable)")
    validate.add_argument("--rejects", default=None, help="where to write the rejects CSV")
    validate.set_defaults(func=_cmd_validate)

    site = sub.add_parser("site", help="propose sites for new facilities of one kind")
    site.add_argument("study", help="study configuration file")
    site.add_argument("--kind", default="mutual_aid", choices=list(kind_ids()))
    group = site.add_mutually_exclusive_group()
    site.add_argument("--three-tier", action="store_true",
                      help="Ordos three-tier plan: county institution, township 敬老院, village 互助幸福院 "
                           "(--target sets the village share, default 100%%)")
    group.add_argument("--add", type=int, help="number of new sites to place")
    group.add_argument("--target", type=float, help="target share of the elderly covered, e.g. 0.9")
    site.add_argument("--minutes", type=float, default=15.0, help="walking minutes (default 15)")
    site.add_argument("--spacing", type=float, default=200.0, help="candidate spacing along streets (m)")
    site.add_argument("--candidates", default=None,
                      help="optional table of candidate buildings (名称, 经度, 纬度 …), e.g. vacant schools")
    site.add_argument("--candidates-crs", default="gcj02",
                      help="coordinate system of that table: gcj02 (default, 高德/腾讯), bd09, wgs84, cgcs2000")
    site.add_argument("--only-candidates", action="store_true",
                      help="choose among the buildings of --candidates only (no street nodes or village centres) "
                           "/ 仅在候选表中的建筑里选址")
    site.add_argument("--out", default=None, help="output root folder (default ./outputs)")
    site.add_argument("--villages", action="store_true",
                      help="village-count target: fewest villages to build in so --target of villages are covered")
    site.add_argument("--village-minutes", type=float, default=None,
                      help="with --villages, also count a village covered when its centre reaches one in this walk")
    site.add_argument("--gap", type=float, default=None,
                      help="with --add: stop once the sites are proved within this share of the best, e.g. 0.005 "
                           "(0.5 %%); 0: prove the best or stop at the time limit; default: prove the best where "
                           "the exact model fits, else stop within 0.5 %% / 允许的最优差距")
    site.add_argument("--capacity", type=float, default=None,
                      help="size of each new facility in the kind's capacity unit (meals a day, beds, m²): "
                           "place them so the capacity-aware coverage is largest / 新设施规模（容量约束选址）")
    site.add_argument("--m2-per-place", type=float, default=35.0,
                      help="with --capacity for kinds measured by floor area: m² per person served "
                           "(default 35, GB 50437 m² per bed) / 每服务一人的建筑面积")
    site.add_argument("--objective", default="coverage", choices=["coverage", "p-median"],
                      help="coverage (default) or p-median: least total walking time of the 60+ "
                           "(those beyond --minutes count --minutes) / 平均步行时间最短")
    site.add_argument("--per-year", type=int, default=None,
                      help="phased siting: new sites per year over --years (with --target: the share to reach "
                           "as early as possible) / 分年度选址：每年新增数量")
    site.add_argument("--years", default=None, help="planning years for --per-year, e.g. 2025-2027 / 规划年份")
    site.add_argument("--budget", default=None,
                      help='phased siting with a budget per year, e.g. "2025:2,2026:3" / 分年度新增数量')
    site.add_argument("--total", type=int, default=None,
                      help="phased siting: at most this many sites over all years (--per-year is then a yearly cap)")
    site.set_defaults(func=_cmd_site)

    region = sub.add_parser("region", help="run every area (county or town) of a region study on Dask "
                                           "/ 区域批量运行")
    region.add_argument("study", help="region study file (a study with a region: block)")
    region.add_argument("--scheduler", default=None,
                        help="address of an existing Dask scheduler, e.g. tcp://host:8786 (default: the Dask "
                             "configuration's scheduler-address, else a local cluster)")
    region.add_argument("--workers", type=int, default=None,
                        help="worker processes of the local cluster (default: from cores and memory)")
    region.add_argument("--serial", action="store_true", help="no Dask: the areas one after the other here")
    region.add_argument("--force", action="store_true", help="redo areas whose outputs are complete and current")
    region.add_argument("--out", default=None, help="output root folder (default ./outputs)")
    region.add_argument("--lang", choices=["zh", "en"], default="zh", help="table headers (default zh)")
    region.add_argument("--no-map", action="store_true", help="skip the maps")
    region.add_argument("--quiet", action="store_true", help="no progress bar")
    region.set_defaults(func=_cmd_region)

    demo = sub.add_parser("make-demo", help="regenerate the synthetic demo data (合成示例数据)")
    demo.add_argument("--root", default=".", help="repository root to write data/ and studies/ into")
    demo.set_defaults(func=_cmd_make_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for input errors a user can fix)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CoverageError as exc:
        print(f"error / 错误: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not the user's input: a short message, the traceback in a file
        if os.environ.get("ELDERCOV_TRACEBACK"):
            raise
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile("w", prefix="eldercov_error_", suffix=".txt", delete=False,
                                         encoding="utf-8") as log:
            traceback.print_exc(file=log)
        print(f"internal error / 程序内部错误: {type(exc).__name__}: {exc}\n"
              f"  what to do / 处理办法: this is a fault of the program, not of your files; please report it with "
              f"the details in {log.name} (set ELDERCOV_TRACEBACK=1 to see them here) / 请将该文件发给开发者",
              file=sys.stderr)
        return 1


def command() -> int:
    """
    The ``eldercov`` command (and ``python -m coverage``): :func:`main` in a process of its own.

    The process is a batch job, so the garbage collector runs less often
    (:func:`coverage.batch_gc.relax_collection_thresholds`) and the process
    ends without the interpreter's teardown of its modules
    (:func:`coverage.batch_gc.exit_without_teardown`); :func:`main` called
    from Python (a notebook, the tests) leaves both alone.
    """
    from coverage.batch_gc import exit_without_teardown, relax_collection_thresholds

    relax_collection_thresholds()
    return exit_without_teardown(main())


if __name__ == "__main__":
    raise SystemExit(command())
