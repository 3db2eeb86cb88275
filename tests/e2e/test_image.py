"""The Dockerfile passes BuildKit's own checks (the rules of `docker build --check`), run here without an engine
by deploy/local/tools/dockerfile-lint, built with the cluster binaries."""

from __future__ import annotations

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _lint(cluster, path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(cluster.bin_dir / "dockerfile-lint"), str(path)], capture_output=True, text=True)


def test_the_dockerfile_passes_buildkit_checks(cluster):
    proc = _lint(cluster, ROOT / "Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no BuildKit check warnings" in proc.stdout


def test_the_checker_reports_what_buildkit_would(cluster, tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim as build\nENV PATH $PATH:/opt\nCMD moectl run\n")
    proc = _lint(cluster, bad)
    assert proc.returncode == 1
    for rule in ("FromAsCasing", "LegacyKeyValueFormat", "JSONArgsRecommended"):
        assert rule in proc.stdout, proc.stdout
