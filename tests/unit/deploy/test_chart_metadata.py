"""Chart.yaml's metadata: where the project lives and an icon that is really in the repository."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import yaml

from tests.support.chart import CHART_DIR, REPO_ROOT, helm


def _chart() -> dict[str, object]:
    chart: dict[str, object] = yaml.safe_load(helm("show", "chart", str(CHART_DIR)))
    return chart


def test_home_and_sources_name_one_repository() -> None:
    chart = _chart()
    home = chart["home"]
    assert isinstance(home, str)
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", home), home
    assert chart["sources"] == [home]


def test_the_icon_is_the_repositorys_svg_served_raw() -> None:
    chart = _chart()
    owner_repo = str(chart["home"]).removeprefix("https://github.com/")
    match = re.fullmatch(
        rf"https://raw\.githubusercontent\.com/{re.escape(owner_repo)}/main/(?P<path>.+\.svg)",
        str(chart["icon"]),
    )
    assert match, chart["icon"]
    path = REPO_ROOT / match["path"]
    assert path.is_file(), f"{match['path']} (the icon URL) is not in the repository"
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox"), "a viewBox lets Artifact Hub and others scale the icon"
    assert path.stat().st_size < 4096
