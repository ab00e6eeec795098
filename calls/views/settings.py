"""Settings pages for admins and owners: the agent's configuration and the FAQ editor.

The FAQ editor works without JavaScript (full pages, redirects) and with
htmx (only the changed entry or region is sent back, plus an out-of-band
update of the page's status line, which screen readers announce).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calls import selectors
from calls.faq_preview import faq_match_preview
from calls.forms import AgentConfigForm, FaqEntryForm, FaqTryForm, ProviderKeyForm
from calls.models import CategoryExample, FaqEntry, ProviderKey
from calls.providers.registry import VOICE_OPTIONS
from calls.services import (
    DialogueServerError,
    ProviderKeyError,
    VoiceListError,
    agent_config_update,
    agent_voice_choose,
    dialogue_models_list,
    faq_entry_create,
    faq_entry_delete,
    faq_entry_update,
    post_call_transcription_set,
    provider_key_save,
    tts_voice_preview,
    tts_voices_list,
)
from calls.services import category_example_delete as category_example_delete_service
from calls.services import provider_key_delete as provider_key_delete_service
from calls.services import provider_key_test as provider_key_test_service
from calls.views.history import TenantRequest
from tenants.models import Membership
from tenants.permissions import role_required
from voicedesk.core.htmx import htmx_render, is_htmx, vary_on_htmx

ADMIN = Membership.Role.ADMIN


def _entry(request: TenantRequest, pk: int) -> FaqEntry:
    try:
        return selectors.faq_entry_get(tenant=request.tenant, entry_id=pk)
    except FaqEntry.DoesNotExist as exc:
        raise Http404("No such FAQ entry.") from exc


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def agent_settings(request: TenantRequest) -> HttpResponse:
    """A plain form post: the whole configuration is saved at once, then the page reloads."""
    config = selectors.agent_config_get(tenant=request.tenant)
    if request.method == "POST":
        form = AgentConfigForm(request.POST, config=config)
        if form.is_valid():
            try:
                agent_config_update(config=config, actor=request.user, **form.changes())  # type: ignore[arg-type]
            except ValidationError as exc:
                form.service_errors_add(exc)
            else:
                messages.success(request, "Agent settings saved. They apply from the next call.")
                return redirect("settings:agent")
    else:
        form = AgentConfigForm(config=config)
    return _agent_page(request, form=form, config=config)


def _agent_page(request: TenantRequest, **context: Any) -> HttpResponse:
    context["category_examples"] = selectors.category_examples_list(tenant=request.tenant)
    config = context.get("config") or selectors.agent_config_get(tenant=request.tenant)
    try:
        context["voices"] = tts_voices_list(tenant=request.tenant, config=config)
    except VoiceListError as exc:
        context["voices_error"] = str(exc)
    option = VOICE_OPTIONS.get(config.tts_provider, "")
    context["voice_current"] = (config.tts_options or {}).get(option, "") if option else ""
    return render(request, "calls/settings/agent.html", context)


@require_POST
@role_required(ADMIN)
def agent_voice(request: TenantRequest) -> HttpResponse:
    """Make one of the listed voices the agent's; a voice the provider does not offer changes nothing."""
    config = selectors.agent_config_get(tenant=request.tenant)
    voice_id = request.POST.get("voice_id", "")
    try:
        agent_voice_choose(tenant=request.tenant, config=config, voice_id=voice_id, actor=request.user)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Voice chosen. Callers hear it from the next call.")
    return redirect(f"{reverse('settings:agent')}#voice")


@require_GET
@role_required(ADMIN)
def agent_voice_preview(request: TenantRequest) -> HttpResponse:
    """A short sample of one of the listed voices as WAV; a voice not listed is a 404."""
    config = selectors.agent_config_get(tenant=request.tenant)
    try:
        wav = tts_voice_preview(tenant=request.tenant, config=config, voice_id=request.GET.get("voice", ""))
    except VoiceListError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(wav, content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@role_required(ADMIN)
def dialogue_models(request: TenantRequest) -> HttpResponse:
    """Ask the model server typed on the agent page for its models; the page comes back as typed, unsaved."""
    config = selectors.agent_config_get(tenant=request.tenant)
    form = AgentConfigForm.unsaved(request.POST, config=config)
    context: dict[str, Any] = {"form": form, "config": config, "models_listed": True}
    try:
        context["dialogue_models"] = dialogue_models_list(
            config=config,
            provider=request.POST.get("dialogue_provider", ""),
            base_url=request.POST.get("dialogue_base_url", "").strip(),
            key_ref=request.POST.get("dialogue_key_ref", ""),
        )
    except DialogueServerError as exc:
        context["dialogue_models_error"] = str(exc)
    return _agent_page(request, **context)


@require_POST
@role_required(ADMIN)
def category_example_delete(request: TenantRequest, pk: int) -> HttpResponse:
    """Forget one learned category example; a missing one is a 404."""
    try:
        category_example_delete_service(example_id=pk, actor=request.user)  # type: ignore[arg-type]
    except CategoryExample.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, "Example removed. The receptionist stops using it from the next call.")
    return redirect("settings:agent")


def _faq_page(request: TenantRequest, **context: Any) -> HttpResponse:
    context.setdefault("create_form", FaqEntryForm())
    context.setdefault("try_form", FaqTryForm())
    context["entries"] = selectors.faq_entry_list(tenant=request.tenant)
    return render(request, "calls/settings/faq.html", context)


@require_GET
@role_required(ADMIN)
def faq_list(request: TenantRequest) -> HttpResponse:
    return _faq_page(request)


@require_POST
@role_required(ADMIN)
@vary_on_htmx
def faq_create(request: TenantRequest) -> HttpResponse:
    form = FaqEntryForm(request.POST)
    entry: FaqEntry | None = None
    if form.is_valid():
        try:
            entry = faq_entry_create(
                actor=request.user,  # type: ignore[arg-type]
                question=form.cleaned_data["question"],
                answer=form.cleaned_data["answer"],
            )
        except ValidationError as exc:
            form.service_errors_add(exc)
    if not is_htmx(request):
        if entry is None:
            return _faq_page(request, create_form=form)
        messages.success(request, f"Added \u201c{entry.question}\u201d.")
        return redirect(f"{reverse('settings:faq')}#faq-{entry.pk}")
    context = {
        "create_form": form if entry is None else FaqEntryForm(),
        "entries": selectors.faq_entry_list(tenant=request.tenant),
        "added": entry,
        "status": f"Added \u201c{entry.question}\u201d." if entry else "",
    }
    return render(request, "calls/settings/_faq_editor.html", context)


@require_GET
@role_required(ADMIN)
@vary_on_htmx
def faq_entry(request: TenantRequest, pk: int) -> HttpResponse:
    """One entry as shown in the list (what "Cancel" on an inline edit goes back to)."""
    entry = _entry(request, pk)
    if not is_htmx(request):
        return redirect(f"{reverse('settings:faq')}#faq-{entry.pk}")
    return render(request, "calls/settings/_faq_entry.html", {"entry": entry})


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
@vary_on_htmx
def faq_edit(request: TenantRequest, pk: int) -> HttpResponse:
    entry = _entry(request, pk)
    if request.method == "POST":
        form = FaqEntryForm(request.POST)
        if form.is_valid():
            try:
                entry = faq_entry_update(
                    entry_id=entry.pk,
                    actor=request.user,  # type: ignore[arg-type]
                    question=form.cleaned_data["question"],
                    answer=form.cleaned_data["answer"],
                )
            except ValidationError as exc:
                form.service_errors_add(exc)
            else:
                status = f"Saved \u201c{entry.question}\u201d."
                if not is_htmx(request):
                    messages.success(request, status)
                    return redirect(f"{reverse('settings:faq')}#faq-{entry.pk}")
                return render(request, "calls/settings/_faq_entry.html", {"entry": entry, "status": status})
    else:
        form = FaqEntryForm(initial={"question": entry.question, "answer": entry.answer})
    context = {"entry": entry, "form": form}
    return htmx_render(request, "calls/settings/faq_edit.html", "calls/settings/_faq_entry_form.html", context)


@require_POST
@role_required(ADMIN)
@vary_on_htmx
def faq_active(request: TenantRequest, pk: int) -> HttpResponse:
    """Switch an entry on or off for calls without losing it."""
    entry = _entry(request, pk)
    wanted = request.POST.get("is_active")
    if wanted not in ("0", "1"):
        return HttpResponse("is_active must be 0 or 1.", status=400, content_type="text/plain")
    entry = faq_entry_update(entry_id=entry.pk, actor=request.user, is_active=wanted == "1")  # type: ignore[arg-type]
    state = "active: callers get this answer" if entry.is_active else "inactive: callers no longer get this answer"
    status = f"\u201c{entry.question}\u201d is now {state}."
    if not is_htmx(request):
        messages.success(request, status)
        return redirect(f"{reverse('settings:faq')}#faq-{entry.pk}")
    return render(request, "calls/settings/_faq_entry.html", {"entry": entry, "status": status})


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
@vary_on_htmx
def faq_delete(request: TenantRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation (without JavaScript); POST deletes."""
    entry = _entry(request, pk)
    if request.method == "GET":
        return render(request, "calls/settings/faq_delete.html", {"entry": entry})
    question = entry.question
    faq_entry_delete(entry_id=entry.pk, actor=request.user)  # type: ignore[arg-type]
    status = f"Deleted \u201c{question}\u201d."
    if not is_htmx(request):
        messages.success(request, status)
        return redirect("settings:faq")
    # The entry's element is swapped for nothing; only the status line remains.
    return render(request, "calls/settings/_faq_status.html", {"status": status, "oob": True})


@require_POST
@role_required(ADMIN)
@vary_on_htmx
def faq_try(request: TenantRequest) -> HttpResponse:
    """Which entry would answer a caller's question, with the top candidates and their scores."""
    form = FaqTryForm(request.POST)
    candidates = []
    if form.is_valid():
        try:
            question = form.cleaned_data["question"]
            candidates = faq_match_preview(question=question, schema_name=request.tenant.schema_name)
        except ValueError as exc:
            form.add_error("question", str(exc))
    context = {"try_form": form, "candidates": candidates, "tried": form.is_valid()}
    if not is_htmx(request):
        return _faq_page(request, **context)
    return render(request, "calls/settings/_faq_try_result.html", context)


# -- The business's own keys for cloud speech providers -----------------------


def _provider(provider: str) -> str:
    # An unknown provider is a missing page, like any other id that is not there.
    if provider not in ProviderKey.Provider.values:
        raise Http404("No such provider.")
    return provider


def _provider_keys_page(request: TenantRequest, **context: Any) -> HttpResponse:
    context.setdefault("form", ProviderKeyForm())
    context["keys"] = selectors.provider_keys_list(tenant=request.tenant)
    context["post_call"] = selectors.post_call_transcription_get(tenant=request.tenant)
    return render(request, "calls/settings/provider_keys.html", context)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def provider_keys(request: TenantRequest) -> HttpResponse:
    """The stored keys (last four characters only); POST adds or replaces one."""
    if request.method == "GET":
        return _provider_keys_page(request)
    form = ProviderKeyForm(request.POST)
    if form.is_valid():
        try:
            row = provider_key_save(
                provider=form.cleaned_data["provider"],
                api_key=form.cleaned_data["api_key"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            form.service_errors_add(exc)
        except ProviderKeyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, f"{row.get_provider_display()} key ending {row.last4} saved. Calls use it from the next one."
            )
            return redirect("settings:provider_keys")
    return _provider_keys_page(request, form=form)


@require_POST
@role_required(ADMIN)
def provider_key_delete(request: TenantRequest, provider: str) -> HttpResponse:
    """Forget the stored key of ``provider``; a provider with none is a 404."""
    _provider(provider)
    try:
        provider_key_delete_service(provider=provider, actor=request.user)  # type: ignore[arg-type]
    except ProviderKey.DoesNotExist as exc:
        raise Http404("No key is stored for that provider.") from exc
    messages.success(request, f"{ProviderKey.Provider(provider).label} key deleted.")
    return redirect("settings:provider_keys")


@require_POST
@role_required(ADMIN)
def post_call_transcription(request: TenantRequest) -> HttpResponse:
    """Turn post-call transcripts with the business's AssemblyAI key on (``enabled=on``) or off."""
    enabled = request.POST.get("enabled") == "on"
    try:
        post_call_transcription_set(enabled=enabled, actor=request.user)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _provider_keys_page(request, post_call_error=" ".join(exc.messages))
    messages.success(
        request,
        "Recordings are transcribed again after each call from now on."
        if enabled
        else "Recordings are no longer transcribed again after calls.",
    )
    return redirect("settings:provider_keys")


@require_POST
@role_required(ADMIN)
def provider_key_test(request: TenantRequest, provider: str) -> HttpResponse:
    """Ask the provider whether the stored key works, and show what it said; nothing is stored."""
    _provider(provider)
    try:
        check = provider_key_test_service(tenant=request.tenant, provider=provider)
    except ProviderKeyError as exc:
        raise Http404(str(exc)) from exc
    return _provider_keys_page(request, tested=provider, check=check)
