"""The image: deploy/docker/Dockerfile and .dockerignore."""

from __future__ import annotations

import re

from .manifests import DOCKERFILE, ROOT


def _dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_deploy_dockerfile_builds_a_slim_non_root_image_from_the_lock() -> None:
    stages = _dockerfile_stages()
    preamble, runtime = stages[0], stages[-1]
    lines = [line for stage in stages for line in stage]

    assert any(re.match(r"ARG PYTHON_IMAGE=python:3\.11-slim", line) for line in preamble), preamble
    assert runtime[0].startswith("FROM ${PYTHON_IMAGE}"), "the runtime stage is the slim Python image"
    syncs = [line for line in lines if "uv sync" in line]
    assert len(syncs) == 2, "one uv sync for the dependencies, one for the workspace members"
    assert all("--frozen" in line and "--no-dev" in line for line in syncs), syncs
    assert "--no-install-workspace" in syncs[0], "the first sync installs third-party packages only"

    users = [line.split(maxsplit=1)[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"runtime user must be numeric so Kubernetes can check it, got {uid}"
    assert int(uid) != 0, "the runtime user is root"
    # Only the build stage's /app (virtualenv and sources) reaches the runtime image: no uv, no context.
    runtime_copies = [line for line in runtime if line.upper().startswith("COPY ")]
    assert runtime_copies == ["COPY --from=build /app /app"], runtime_copies
    assert ".secrets" not in "\n".join(lines)


def test_deploy_dockerfile_dependency_layer_sees_only_the_manifests() -> None:
    # Every member's pyproject.toml must be there for uv (new members too), and nothing else, or
    # any source edit would reinstall every dependency.
    stages = {stage[0].split()[-1]: stage for stage in _dockerfile_stages()[1:]}
    manifests = "\n".join(stages["manifests"])
    assert "COPY . ." in manifests
    assert "! -name pyproject.toml ! -name uv.lock -delete" in manifests
    build = stages["build"]
    first_sync = next(i for i, line in enumerate(build) if "uv sync" in line)
    copies = [line for line in build[:first_sync] if line.upper().startswith("COPY ")]
    assert copies == ["COPY --from=uv /uv /usr/local/bin/uv", "COPY --from=manifests /src/ ./"], copies


def test_deploy_dockerignore_keeps_local_state_secrets_and_tests_out() -> None:
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    entries = {entry for entry in entries if not entry.startswith("#")}
    required = {
        ".venv": {".venv", "**/.venv"},
        ".git": {".git"},
        ".secrets": {".secrets", "**/.secrets"},
        "tests": {"tests", "**/tests"},
        "__pycache__": {"__pycache__", "**/__pycache__"},
        ".mypy_cache": {".mypy_cache", "**/.mypy_cache"},
        ".pytest_cache": {".pytest_cache", "**/.pytest_cache"},
        ".ruff_cache": {".ruff_cache", "**/.ruff_cache"},
    }
    missing = [name for name, spellings in required.items() if not spellings & entries]
    assert not missing, f".dockerignore does not exclude {missing}"
