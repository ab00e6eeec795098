"""Questions callers asked that the FAQ could not answer: answer them once, or let them go."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from tenants.models import Membership
from tenants.permissions import role_required
from tickets.forms import QuestionToFaqForm
from tickets.models import UnansweredQuestion
from tickets.selectors import unanswered_question_list
from tickets.services import TicketError, unanswered_question_dismiss, unanswered_question_to_faq
from tickets.views.common import business_time, is_htmx, request_actor


@require_GET
@role_required(Membership.Role.AGENT)
@business_time
def question_list(request: HttpRequest) -> HttpResponse:
    questions = list(unanswered_question_list())
    rows = [
        (question, QuestionToFaqForm(initial={"question": question.question}, prefix=f"q{question.pk}"))
        for question in questions
    ]
    return render(request, "tickets/question_list.html", {"rows": rows, "count": len(rows)})


def _question(pk: int) -> UnansweredQuestion:
    question = UnansweredQuestion.objects.select_related("ticket", "call").filter(pk=pk).first()
    if question is None:
        raise Http404("No such question.")
    return question


def _done(request: HttpRequest, text: str) -> HttpResponse:
    """The row goes away; the announcement and the count are updated out of band."""
    if not is_htmx(request):
        messages.success(request, text)
        return redirect("tickets:question_list")
    count = unanswered_question_list().count()
    return render(request, "tickets/_question_done.html", {"text": text, "count": count})


def _row_error(request: HttpRequest, question: UnansweredQuestion, form: QuestionToFaqForm, error: str) -> HttpResponse:
    if not is_htmx(request):
        messages.error(request, error)
        return redirect("tickets:question_list")
    context: dict[str, Any] = {"question": question, "form": form, "error": error}
    return render(request, "tickets/_question_row.html", context)


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def question_to_faq(request: HttpRequest, pk: int) -> HttpResponse:
    question = _question(pk)
    form = QuestionToFaqForm(request.POST, prefix=f"q{pk}")
    if not form.is_valid():
        return _row_error(request, question, form, "Both the question and its answer are needed.")
    try:
        entry = unanswered_question_to_faq(question_id=pk, actor=request_actor(request), **form.cleaned_data)
    except TicketError as exc:
        return _row_error(request, question, form, str(exc))
    return _done(request, f"Added to the FAQ: {entry.question}")


@require_POST
@role_required(Membership.Role.AGENT)
@business_time
def question_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    question = _question(pk)
    try:
        unanswered_question_dismiss(question_id=pk, actor=request_actor(request))
    except TicketError as exc:
        form = QuestionToFaqForm(initial={"question": question.question}, prefix=f"q{pk}")
        return _row_error(request, question, form, str(exc))
    return _done(request, f"Dismissed: {question.question}")
