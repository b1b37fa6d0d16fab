"""skaffold.yaml, checked without skaffold or Docker: every path, image and value it names exists.

tests/integration/deploy renders the chart with the kind profile's values and sends its
objects and the profile's dependency manifests to the real API server (dry run).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from deploy.chart_readme import parse_values
from tests.support.chart import CHART_DIR, REPO_ROOT, containers, one, render

SKAFFOLD = yaml.safe_load((REPO_ROOT / "skaffold.yaml").read_text())
VALUE_PATHS = {d.path for d in parse_values((CHART_DIR / "values.yaml").read_text())}


def releases(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config.get("deploy", {}).get("helm", {}).get("releases", []))


def test_config_builds_both_images_from_their_dockerfiles() -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta13"
    assert SKAFFOLD["kind"] == "Config"
    artifacts = {a["image"]: a for a in SKAFFOLD["build"]["artifacts"]}
    assert set(artifacts) == {"cj-operator", "cj-workers"}
    for artifact in artifacts.values():
        assert artifact["context"] == "."
        assert (REPO_ROOT / artifact["docker"]["dockerfile"]).is_file()


def test_every_release_deploys_the_chart_with_the_built_images() -> None:
    configs = [SKAFFOLD, *SKAFFOLD["profiles"]]
    all_releases = [r for c in configs for r in releases(c)]
    assert len(all_releases) == 2
    for release in all_releases:
        assert (REPO_ROOT / release["chartPath"] / "Chart.yaml").is_file()
        templates = release["setValueTemplates"]
        assert set(templates) <= VALUE_PATHS, set(templates) - VALUE_PATHS
        for key, template in templates.items():
            image = re.fullmatch(r"\{\{\.IMAGE_(REPO|TAG)_(cj_operator|cj_workers)\}\}", template)
            assert image, (key, template)
            assert image[2].replace("_", "-") in {
                a["image"] for a in SKAFFOLD["build"]["artifacts"]
            }
        for values_file in release.get("valuesFiles", []):
            assert (REPO_ROOT / values_file).is_file()


def test_kind_profile_activates_on_kind_contexts_and_brings_its_dependencies() -> None:
    (kind,) = [p for p in SKAFFOLD["profiles"] if p["name"] == "kind"]
    assert kind["activation"] == [{"kubeContext": "kind-.*"}]
    assert kind["build"]["local"]["push"] is False
    manifests = kind["manifests"]["rawYaml"]
    assert "kubectl" in kind["deploy"]
    docs = [d for m in manifests for d in yaml.safe_load_all((REPO_ROOT / m).read_text()) if d]
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert services == {"postgresql", "redis", "kafka"}
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    (release,) = releases(kind)
    values = yaml.safe_load((REPO_ROOT / release["valuesFiles"][0]).read_text())
    assert values["database"]["password"]["existingSecret"] == secret["metadata"]["name"]
    assert {values["database"]["host"], values["redis"]["host"]} <= services
    assert values["kafka"]["bootstrapServers"].split(":")[0] in services


def test_kind_values_render_with_the_chart() -> None:
    objects = render(values_files=[REPO_ROOT / "deploy" / "kind" / "values.yaml"])
    operator = containers(one(objects, "Deployment", "-operator"))[0]
    env = {e["name"]: e for e in operator["env"]}
    assert env["CJ_OPERATOR_MIGRATE_ON_START"]["value"] == "true"
    assert not [o for o in objects if o["kind"] == "Job"]
