"""The README's first command runs the quickstart: it must keep working as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import runlane

ROOT = Path(__file__).resolve().parent.parent


def test_the_quickstart_logs_a_sweep_and_a_fork_whose_chart_continues_its_parent(tmp_path: Path) -> None:
    store = tmp_path / "quick"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--dir", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Forked it at step 300" in result.stdout
    assert f"runlane ls --dir {store}" in result.stdout
    assert f"runlane ui --dir {store}" in result.stdout
    assert "/run/QS-4/charts" in result.stdout  # the fork's charts: where a newcomer sees it continue
    with runlane.Api(store) as api:
        runs = api.runs()
        [fork] = [r for r in runs if r.fork_run_id is not None]
        assert fork.fork_step == 300
        assert all(r.status == "finished" for r in runs)
        stitched = api.history(fork.id, "train/loss", stitched=True)
        assert {p.run_id for p in stitched} == {fork.fork_run_id, fork.id}
        assert [p.step for p in stitched] == sorted(p.step for p in stitched)
