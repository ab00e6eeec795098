"""Questions callers asked that the FAQ could not answer: answer them once, or let them go.

Agents see the list and dismiss questions; adding to the FAQ changes what the
voice agent tells every caller, so it takes an admin (as editing the FAQ does).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from tenants.models import Membership
from tenants.permissions import membership_has_role, request_membership, role_required
from tickets.forms import QuestionToFaqForm
from tickets.models import UnansweredQuestion
from tickets.selectors import PAGE_SIZE, unanswered_question_get, unanswered_question_list
from tickets.services import TicketError, unanswered_question_dismiss, unanswered_question_to_faq
from tickets.views.common import business_time, request_actor
from voicedesk.core.htmx import is_htmx


def _can_add_to_faq(request: HttpRequest) -> bool:
    return membership_has_role(request_membership(request), Membership.Role.ADMIN)


def _form(question: UnansweredQuestion) -> QuestionToFaqForm:
    return QuestionToFaqForm(initial={"question": question.question}, prefix=f"q{question.pk}")


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def question_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(unanswered_question_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(question, _form(question)) for question in page.object_list]
    context = {"rows": rows, "page": page, "count": page.paginator.count, "can_add_to_faq": _can_add_to_faq(request)}
    return render(request, "tickets/question_list.html", context)


def _question(pk: int) -> UnansweredQuestion:
    try:
        return unanswered_question_get(question_id=pk)
    except UnansweredQuestion.DoesNotExist as exc:
        raise Http404("No such question.") from exc


def _done(request: HttpRequest, text: str) -> HttpResponse:
    """The row goes away; the announcement and the count are updated out of band."""
    if not is_htmx(request):
        messages.success(request, text)
        return redirect("tickets:question_list")
    count = unanswered_question_list().count()
    return render(request, "tickets/_question_done.html", {"text": text, "count": count})


def _row_error(request: HttpRequest, question: UnansweredQuestion, form: QuestionToFaqForm, error: str) -> HttpResponse:
    """The row again, with ``error`` on top and the form's field errors next to their fields."""
    if not is_htmx(request):
        messages.error(request, error or _errors_text(form))
        return redirect("tickets:question_list")
    context: dict[str, Any] = {
        "question": question,
        "form": form,
        "error": error,
        "can_add_to_faq": _can_add_to_faq(request),
    }
    return render(request, "tickets/_question_row.html", context)


def _errors_text(form: QuestionToFaqForm) -> str:
    return " ".join(str(message) for messages_ in form.errors.values() for message in messages_)


@require_POST
@role_required(Membership.Role.ADMIN)
@business_time
def question_to_faq(request: HttpRequest, pk: int) -> HttpResponse:
    question = _question(pk)
    form = QuestionToFaqForm(request.POST, prefix=f"q{pk}")
    if not form.is_valid():
        return _row_error(request, question, form, "")
    try:
        entry = unanswered_question_to_faq(question_id=pk, actor=request_actor(request), **form.cleaned_data)
    except TicketError as exc:
        return _row_error(request, question, form, str(exc))
    except ValidationError as exc:
        # Keyed by question/answer: the messages go next to the fields.
        form.add_error(None, exc)
        return _row_error(request, question, form, "")
    return _done(request, f"Added to the FAQ: {entry.question}")


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def question_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    question = _question(pk)
    try:
        unanswered_question_dismiss(question_id=pk, actor=request_actor(request))
    except TicketError as exc:
        return _row_error(request, question, _form(question), str(exc))
    return _done(request, f"Dismissed: {question.question}")
