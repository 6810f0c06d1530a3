"""Is the kind registry the one place a facility kind lives?"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import openpyxl

from coverage import kinds
from coverage.config import KINDS
from tests.conftest import REPO_ROOT


def test_every_part_of_the_package_reads_its_kinds_from_the_registry():
    from coverage import figures, maps, report

    registry = kinds.registry()
    assert KINDS == registry.ids
    for kind in registry.kinds:
        assert maps.KIND_LABELS[kind.id] == report.KIND_ZH[kind.id] == kind.label_zh
        assert maps.KIND_COLOURS[kind.id] == kind.colour
        assert figures._KIND_MARKERS[kind.id] == kind.marker
        assert kind.types and kind.capacity


def test_adding_a_kind_to_the_registry_is_enough_for_the_workbook_map_and_command_line(tmp_path):
    # a copy of the package whose kinds.yaml has one entry more, and nothing else changed
    package = tmp_path / "site-packages" / "coverage"
    shutil.copytree(REPO_ROOT / "coverage", package, ignore=shutil.ignore_patterns("__pycache__"))
    registry_file = package / "kinds.yaml"
    text = registry_file.read_text(encoding="utf-8")
    entry = (
        "  elder_university:\n    label_zh: 老年大学\n    label_en: university for the elderly\n"
        "    colour: \"#17becf\"\n    marker: h\n    capacity: floor_area_m2\n    types: [老年大学]\n"
        "    keywords: [老年大学]\n    counts_for: []\n\n"
    )
    registry_file.write_text(text.replace("# Types too general", entry + "# Types too general", 1), encoding="utf-8")
    study = tmp_path / "demo.yaml"
    study.write_text((REPO_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8")
                     .replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(package.parent)}

    def eldercov(*args):
        return subprocess.run([sys.executable, "-m", "coverage", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    done = eldercov("run", str(study), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    # the demo's 老年大学 row, rejected with the shipped registry, is now a facility of the new kind
    assert "elder_university" in done.stdout and "老年大学" in done.stdout
    out = tmp_path / "out" / "demo"
    book = openpyxl.load_workbook(out / "demo_coverage.xlsx", read_only=True)
    cells = {str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row}
    assert any("老年大学" in cell for cell in cells)
    assert "老年大学" in (out / "demo_map.html").read_text(encoding="utf-8")
    help_text = eldercov("site", "--help").stdout
    assert "elder_university" in help_text
