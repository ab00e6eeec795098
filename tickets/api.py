"""REST API for tickets (with notes and history) and the callback queue.

Views parse and check; every write goes through ``tickets.services``, which
writes the audit rows and announces the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import django_filters
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.http.response import HttpResponseBase
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from tickets.models import Callback, Ticket
from tickets.selectors import ticket_priority_rank, ticket_search_q
from tickets.serializers import (
    CallbackOutcomeSerializer,
    CallbackSerializer,
    TicketChangeSerializer,
    TicketCreateSerializer,
    TicketNoteCreateSerializer,
    TicketNoteSerializer,
    TicketSerializer,
    TicketUpdateSerializer,
)
from tickets.services import (
    callback_next,
    callback_outcome_log,
    ticket_assign,
    ticket_create,
    ticket_note_add,
    ticket_update,
)
from voicedesk.core.api.csv_export import (
    EXPORT_CHUNK_SIZE,
    CsvOnlyNegotiation,
    CsvRenderer,
    csv_response,
    export_filename,
)
from voicedesk.core.api.filters import StableOrderingFilter, UtcIsoDateTimeFilter
from voicedesk.core.api.params import validated
from voicedesk.web.api.permissions import IsTenantAdmin, api_actor

if TYPE_CHECKING:
    from rest_framework.views import APIView

SEARCH_MAX_CHARS = 200
_M = TypeVar("_M", bound=Model)
_R = TypeVar("_R")


class TicketSearchFilter(SearchFilter):
    """``?search=``: the inbox's search (``T-123``, phone numbers however typed, names, subjects), plus descriptions.

    One phrase, not words matched separately, so the API finds what the inbox finds.
    """

    search_description = (
        "Ticket number (T-123 or 123), phone number in any format, or text in the subject, caller name, "
        "email, summary or description."
    )

    def filter_queryset(self, request: Request, queryset: QuerySet[_M, _R], view: APIView) -> QuerySet[_M, _R]:
        raw = str(request.query_params.get(self.search_param, ""))
        # PostgreSQL text cannot hold NUL: it separates words like any other space.
        text = " ".join(raw.replace("\x00", " ").split())[:SEARCH_MAX_CHARS]
        if not text:
            return queryset
        return queryset.filter(ticket_search_q(text) | Q(description__icontains=text))


TICKET_FILTER_BACKENDS = [DjangoFilterBackend, TicketSearchFilter]


class TicketFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices, help_text="Repeat for several.")
    priority = django_filters.MultipleChoiceFilter(choices=Ticket.Priority.choices, help_text="Repeat for several.")
    category = django_filters.CharFilter()
    tag = django_filters.CharFilter(method="filter_tag", help_text="Tickets carrying this tag.")
    source = django_filters.ChoiceFilter(choices=Ticket.Source.choices)
    assignee = django_filters.NumberFilter(field_name="assignee", help_text="User id of the assignee.")
    unassigned = django_filters.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = StableOrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("due_at", "due_at"),
            # Ranked as in the inbox: ``priority`` puts urgent first, ``-priority`` low first.
            ("priority_rank", "priority"),
            ("id", "id"),
        ),
        help_text=("Sort by created_at, updated_at, due_at, priority (urgent first) or id; prefix - for descending."),
    )

    class Meta:
        model = Ticket
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        return queryset.filter(tags__contains=[value.strip().lower()])


def ticket_queryset() -> QuerySet[Ticket]:
    return Ticket.objects.select_related("assignee").annotate(priority_rank=ticket_priority_rank())


@extend_schema_view(
    list=extend_schema(summary="List tickets", description="Newest first unless `ordering` says otherwise."),
    retrieve=extend_schema(summary="Get a ticket"),
)
class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    queryset = Ticket.objects.all()
    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    filter_backends = TICKET_FILTER_BACKENDS
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Ticket]:
        return ticket_queryset()

    def _ticket(self, ticket_id: int) -> Ticket:
        return ticket_queryset().get(pk=ticket_id)

    @extend_schema(summary="Open a ticket", request=TicketCreateSerializer, responses={201: TicketSerializer})
    def create(self, request: Request) -> Response:
        data = validated(TicketCreateSerializer, request)
        ticket = ticket_create(actor=api_actor(request), source=Ticket.Source.API, **data)
        body = TicketSerializer(self._ticket(ticket.pk)).data
        location = reverse("api:ticket-detail", args=[ticket.pk])
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="Change a ticket",
        description="Each changed field writes a history row. Status changes follow the ticket's status flow.",
        request=TicketUpdateSerializer,
        responses={200: TicketSerializer},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        ticket = self.get_object()
        data = validated(TicketUpdateSerializer, request)
        actor = api_actor(request)
        # Both changes or neither: a refused status change must not leave a new assignee behind.
        with transaction.atomic():
            if "assignee" in data:
                ticket_assign(ticket_id=ticket.pk, actor=actor, assignee=data.pop("assignee"))
            if data:
                ticket_update(ticket_id=ticket.pk, actor=actor, **data)
        return Response(TicketSerializer(self._ticket(ticket.pk)).data)

    @extend_schema(methods=["GET"], summary="A ticket's internal notes", responses=TicketNoteSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        summary="Add an internal note",
        request=TicketNoteCreateSerializer,
        responses={201: TicketNoteSerializer},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def notes(self, request: Request, pk: str) -> Response:
        ticket = self.get_object()
        if request.method == "GET":
            notes = ticket.notes.select_related("author").order_by("created_at", "id")
            return Response(TicketNoteSerializer(notes, many=True).data)
        data = validated(TicketNoteCreateSerializer, request)
        note = ticket_note_add(ticket_id=ticket.pk, actor=api_actor(request), body=data["body"])
        return Response(TicketNoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A ticket's history", responses=TicketChangeSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def changes(self, request: Request, pk: str) -> Response:
        ticket = self.get_object()
        changes = ticket.changes.select_related("actor").order_by("created_at", "id")
        return Response(TicketChangeSerializer(changes, many=True).data)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        # Only the schema asks: each action builds its own serializers.
        return {"notes": TicketNoteSerializer, "changes": TicketChangeSerializer}.get(self.action, TicketSerializer)


TICKET_EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "id"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("status", "status"),
    ("priority", "priority"),
    ("category", "category"),
    ("tags", "tags"),
    ("subject", "subject"),
    ("description", "description"),
    ("summary", "summary"),
    ("caller_name", "caller_name"),
    ("callback_number", "callback_number"),
    ("email", "email"),
    ("source", "source"),
    ("assignee", "assignee__email"),
    ("due_at", "due_at"),
    ("resolved_at", "resolved_at"),
    ("call_id", "call_id"),
)


class TicketExportView(GenericAPIView):
    """All tickets matching the list's filters, as CSV."""

    queryset = Ticket.objects.all()
    filterset_class = TicketFilter
    filter_backends = TICKET_FILTER_BACKENDS
    permission_classes = [IsTenantAdmin]
    renderer_classes = [CsvRenderer]
    content_negotiation_class = CsvOnlyNegotiation
    pagination_class = None
    throttle_scope = "export"

    def get_queryset(self) -> QuerySet[Ticket]:
        return ticket_queryset()

    @extend_schema(
        operation_id="tickets_export",
        summary="Export tickets as CSV",
        description="Takes the list's filters, search and ordering. Admins, owners and API keys only.",
        filters=True,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="RFC 4180 CSV, UTF-8.")},
    )
    def get(self, request: Request) -> HttpResponseBase:
        tickets = self.filter_queryset(self.get_queryset())
        rows = (
            (f"T-{row[0]}", *row[1:])
            for row in tickets.values_list(*(field for _, field in TICKET_EXPORT_COLUMNS)).iterator(
                chunk_size=EXPORT_CHUNK_SIZE
            )
        )
        return csv_response(
            filename=export_filename("tickets"), header=[name for name, _ in TICKET_EXPORT_COLUMNS], rows=rows
        )


class CallbackFilter(django_filters.FilterSet):
    done = django_filters.BooleanFilter(
        field_name="completed_at", lookup_expr="isnull", exclude=True, help_text="false: still in the queue."
    )
    assignee = django_filters.NumberFilter(field_name="assignee", help_text="User id of the assignee.")
    priority = django_filters.MultipleChoiceFilter(choices=Ticket.Priority.choices, help_text="Repeat for several.")
    ordering = StableOrderingFilter(
        fields=(("due_at", "due_at"), ("created_at", "created_at"), ("last_attempt_at", "last_attempt_at")),
        help_text="Sort by due_at, created_at or last_attempt_at; prefix - for descending.",
    )

    class Meta:
        model = Callback
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="List callbacks", description="Earliest due first."),
    retrieve=extend_schema(summary="Get a callback"),
)
class CallbackViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    queryset = Callback.objects.all()
    serializer_class = CallbackSerializer
    filterset_class = CallbackFilter
    search_fields = ["phone", "reason", "ticket__subject"]
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Callback]:
        return Callback.objects.select_related("ticket", "assignee")

    def _callback(self, callback_id: int) -> Callback:
        return self.get_queryset().get(pk=callback_id)

    @extend_schema(
        summary="Log a callback attempt",
        description="Reached or wrong number completes the callback; otherwise it stays queued.",
        request=CallbackOutcomeSerializer,
        responses={200: CallbackSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def outcome(self, request: Request, pk: str) -> Response:
        callback = self.get_object()
        data = validated(CallbackOutcomeSerializer, request)
        callback_outcome_log(callback_id=callback.pk, actor=api_actor(request), **data)
        return Response(CallbackSerializer(self._callback(callback.pk)).data)

    @extend_schema(
        summary="Take the next callback",
        description="Assigns the most urgent open callback to the caller of this endpoint; 204 when none is left.",
        request=None,
        responses={200: CallbackSerializer, 204: OpenApiResponse(description="The queue is empty.")},
    )
    @action(detail=False, methods=["post"], url_path="next", filterset_class=None)
    def take_next(self, request: Request) -> Response:
        callback = callback_next(actor=api_actor(request))
        if callback is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(CallbackSerializer(self._callback(callback.pk)).data)
