"""Every public caller scenario, as real-time phone calls through the whole product."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from calls.simulator import ServerStack
from calls.simulator.scenario import load_scenarios

# ../shared/scenarios, relative to the repository root.
SCENARIO_DIR = Path(settings.BASE_DIR).parent / "shared" / "scenarios"


@pytest.mark.acceptance
@pytest.mark.django_db(transaction=True)
def test_every_scenario_passes(live_stack: ServerStack, tmp_path: Path) -> None:
    files = sorted(SCENARIO_DIR.glob("*.yaml"))
    assert files, f"no scenarios in {SCENARIO_DIR}"
    report_path = tmp_path / "report.json"
    output = io.StringIO()
    arguments = [argument for path in files for argument in ("--scenario", str(path))]
    try:
        call_command(
            "simulate_call",
            *arguments,
            "--concurrency", str(len(files)),
            "--base-url", live_stack.base_url,
            "--json-report", str(report_path),
            "--record-dir", str(tmp_path / "recordings"),
            stdout=output,
        )  # fmt: skip
    except CommandError as exc:
        pytest.fail(
            f"{exc}\n\n{output.getvalue()}\n\nserver log tail ({live_stack.log_dir}):\n{live_stack.log_tail('daphne')}",
            pytrace=False,
        )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    results = {call["scenario"]: call["passed"] for call in report["calls"]}
    assert results == {scenario.id: True for scenario in load_scenarios(files)}
