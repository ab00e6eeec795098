"""A shared scenario as a real-time phone call, with the business's receptionist on a language model.

The model is the OpenAI-compatible emulator on loopback playing a scripted
model (there is none offline); the product reaches it through the openai
SDK from its voice process, exactly as it would reach Ollama.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from calls.models import AgentConfig
from calls.providers.emulators.openai_chat import OpenAiChatEmulator
from tenants.models import Tenant
from tests.acceptance.test_scenarios import SCENARIO_DIR, _simulate
from tests.calls.dialogue.llm_models import ReceptionistModel
from tests.live_stack import ServerStack
from voicedesk.simulator import provision_tenant
from voicedesk.simulator.scenario import load_scenario

SCENARIO = SCENARIO_DIR / "acme-leak-basic.yaml"


@pytest.fixture
def model() -> Iterator[tuple[OpenAiChatEmulator, ReceptionistModel]]:
    script = ReceptionistModel()
    # No key, as Ollama: the voice process was started before this test and has no key variable.
    emulator = OpenAiChatEmulator(script, api_key="", models=("llama3.1",), tokens_per_s=60, ttft_s=0.2).start()
    yield emulator, script
    emulator.stop()


@pytest.mark.acceptance
@pytest.mark.django_db(transaction=True)
def test_a_scenario_gives_its_ticket_with_the_llm_receptionist(
    live_stack: ServerStack, model: tuple[OpenAiChatEmulator, ReceptionistModel], tmp_path: Path
) -> None:
    emulator, script = model
    spec = load_scenario(SCENARIO).tenant
    # The stack may have just started: a call placed while daphne loads its speech models can miss
    # the carrier's start deadline.
    live_stack.wait_warm()
    provision_tenant(spec)
    tenant = Tenant.objects.get(schema_name=spec.slug.replace("-", "_"))
    with tenant_context(tenant):
        AgentConfig.objects.update(
            dialogue_provider="ollama", dialogue_options={"model": "llama3.1", "base_url": emulator.base_url}
        )
    try:
        (tmp_path / "call").mkdir()
        calls, output = _simulate([SCENARIO], live_stack.base_url, tmp_path / "call", 1)
    finally:
        with tenant_context(tenant):
            AgentConfig.objects.update(dialogue_provider="receptionist", dialogue_options={})

    [call] = calls.values()
    assert call["passed"], f"{call['mismatches'] or call['error']}\n{output}"
    # The model, not only the deterministic receptionist, took the caller's turns.
    assert len(script.requests) >= 4, output
    assert any(m.get("tool_calls") for r in script.requests for m in r["messages"] if m["role"] == "assistant")
