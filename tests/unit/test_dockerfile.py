"""The operator image's Dockerfile: the project's rules (BuildKit's own checks run in tests/e2e/test_image.py)."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in INSTRUCTIONS:
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_multi_stage_with_a_pinned_base():
    assert len(_stages()) == 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    # an exact CPython patch release on a named Debian release, never a moving tag
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base), base
    assert all(line.startswith("FROM ${PYTHON_IMAGE}") for line in INSTRUCTIONS if line.startswith("FROM "))


def test_the_runtime_stage_runs_as_a_numeric_non_root_user_in_exec_form():
    runtime = _stages()[-1]
    user = [line for line in runtime if line.startswith("USER ")]
    assert user and re.fullmatch(r"USER [1-9]\d*:[1-9]\d*", user[-1])
    assert runtime.index(user[-1]) > max(i for i, line in enumerate(runtime) if line.startswith(("COPY", "RUN", "ENV")))
    assert [line for line in runtime if line.startswith("ENTRYPOINT")] == ['ENTRYPOINT ["moectl"]']
    assert not any(line.startswith("RUN ") for line in runtime)  # nothing installed or built in the final image
    assert any(line.startswith("COPY --from=build /opt/moe-operator") for line in runtime)


def test_the_build_context_is_only_the_package():
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and "!operator/" in ignore and "!pyproject.toml" in ignore
    copies = [line for line in INSTRUCTIONS if line.startswith("COPY ") and "--from" not in line]
    assert copies == ["COPY pyproject.toml README.md ./", "COPY operator ./operator"]


def test_the_image_installs_no_plotting_dashboard_or_test_packages():
    runtime = [r for r in importlib.metadata.requires("moe-operator") if "extra ==" not in r]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in runtime}
    assert {"kopf", "kubernetes", "pydantic", "cryptography", "prometheus-client"} <= names
    assert not names & {"matplotlib", "grafana-foundation-sdk", "pytest", "hypothesis", "import-linter"}


def test_the_operator_runs_without_the_optional_packages():
    """`moectl run` imports nothing from the extras the image leaves out."""
    code = ("import sys\n"
            "for m in ('matplotlib', 'grafana_foundation_sdk', 'pytest', 'hypothesis'): sys.modules[m] = None\n"
            "import moe_operator.handlers.operator, moe_operator.cli.main as cli\n"
            "from typer.testing import CliRunner\n"
            "r = CliRunner().invoke(cli.app, ['run', '--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "r = CliRunner().invoke(cli.app, ['dashboard'])\n"
            "assert r.exit_code == 2 and 'moe-operator[dashboards]' in r.output, r.output\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
