"""REST API for calls (read-only, with transcript and latencies), the FAQ and the agent's configuration.

Views parse and check; every write goes through ``calls.services``, which
validates, audits and saves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_filters
from django.db.models import F, QuerySet
from django.http import Http404
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from calls.models import AgentConfig, Call, FaqEntry
from calls.serializers import (
    AgentConfigSerializer,
    AgentConfigUpdateSerializer,
    CallDetailSerializer,
    CallSerializer,
    FaqEntryCreateSerializer,
    FaqEntrySerializer,
    FaqEntryUpdateSerializer,
    recording_url,
)
from calls.services import agent_config_update, faq_entry_create, faq_entry_delete, faq_entry_update
from voicedesk.core.api.csv_export import (
    EXPORT_CHUNK_SIZE,
    CsvOnlyNegotiation,
    CsvRenderer,
    csv_response,
    export_filename,
)
from voicedesk.core.api.filters import StableOrderingFilter, UtcIsoDateTimeFilter
from voicedesk.core.api.params import validated
from voicedesk.web.api.permissions import IsTenantAdmin, MemberReadsAdminWrites, api_actor

CALL_SEARCH_FIELDS = ["from_number", "to_number", "carrier_call_id"]


class CallFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Call.Status.choices, help_text="Repeat for several.")
    carrier = django_filters.ChoiceFilter(choices=Call.Carrier.choices)
    from_number = django_filters.CharFilter(help_text="The caller's number, exactly as stored (E.164).")
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    ordering = StableOrderingFilter(
        fields=(("started_at", "started_at"), ("ended_at", "ended_at"), ("id", "id")),
        help_text="Sort by started_at, ended_at or id; prefix - for descending.",
    )

    class Meta:
        model = Call
        fields: list[str] = []


def call_queryset() -> QuerySet[Call]:
    return Call.objects.annotate(ticket_pk=F("ticket__id"))


@extend_schema_view(
    list=extend_schema(summary="List calls", description="Newest first unless `ordering` says otherwise."),
    retrieve=extend_schema(summary="Get a call", description="With the transcript and per-turn latencies."),
)
class CallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    queryset = Call.objects.all()
    filterset_class = CallFilter
    search_fields = CALL_SEARCH_FIELDS
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Call]:
        if self.action == "retrieve":
            return call_queryset().prefetch_related("utterances", "turn_latencies")
        return call_queryset()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer


CALL_EXPORT_HEADER: tuple[str, ...] = (
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "status",
    "end_reason",
    "carrier",
    "carrier_call_id",
    "from_number",
    "to_number",
    "ticket",
    "recording_url",
)


class CallExportView(GenericAPIView):
    """All calls matching the list's filters, as CSV."""

    queryset = Call.objects.all()
    filterset_class = CallFilter
    search_fields = CALL_SEARCH_FIELDS
    permission_classes = [IsTenantAdmin]
    renderer_classes = [CsvRenderer]
    content_negotiation_class = CsvOnlyNegotiation
    pagination_class = None
    throttle_scope = "export"

    def get_queryset(self) -> QuerySet[Call]:
        return call_queryset()

    @extend_schema(
        operation_id="calls_export",
        summary="Export calls as CSV",
        description="Takes the list's filters, search and ordering. Admins, owners and API keys only.",
        filters=True,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="RFC 4180 CSV, UTF-8.")},
    )
    def get(self, request: Request) -> HttpResponseBase:
        calls = self.filter_queryset(self.get_queryset()).values_list(
            "id",
            "started_at",
            "answered_at",
            "ended_at",
            "status",
            "end_reason",
            "carrier",
            "carrier_call_id",
            "from_number",
            "to_number",
            "ticket_pk",
            "recording",
        )

        def rows() -> Iterator[tuple[Any, ...]]:
            for pk, started, answered, ended, *middle, ticket_pk, recording in calls.iterator(
                chunk_size=EXPORT_CHUNK_SIZE
            ):
                duration = (ended - answered).total_seconds() if ended and answered else None
                yield (
                    pk,
                    started,
                    answered,
                    ended,
                    duration,
                    *middle,
                    f"T-{ticket_pk}" if ticket_pk else None,
                    recording_url(request, pk) if recording else None,
                )

        return csv_response(filename=export_filename("calls"), header=CALL_EXPORT_HEADER, rows=rows())


class FaqEntryFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()
    ordering = StableOrderingFilter(
        fields=(("id", "id"), ("created_at", "created_at"), ("question", "question")),
        help_text="Sort by id, created_at or question; prefix - for descending.",
    )

    class Meta:
        model = FaqEntry
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="List FAQ entries"),
    retrieve=extend_schema(summary="Get an FAQ entry"),
)
class FaqEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """The answers the agent gives callers. Members read; admins, owners and keys change."""

    queryset = FaqEntry.objects.all()
    serializer_class = FaqEntrySerializer
    filterset_class = FaqEntryFilter
    search_fields = ["question", "answer"]
    permission_classes = [MemberReadsAdminWrites]
    lookup_value_converter = "int"

    @extend_schema(summary="Add an FAQ entry", request=FaqEntryCreateSerializer, responses={201: FaqEntrySerializer})
    def create(self, request: Request) -> Response:
        data = validated(FaqEntryCreateSerializer, request)
        entry = faq_entry_create(actor=api_actor(request), **data)
        return Response(FaqEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change an FAQ entry", request=FaqEntryUpdateSerializer, responses={200: FaqEntrySerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        entry = self.get_object()
        data = validated(FaqEntryUpdateSerializer, request)
        entry = faq_entry_update(entry_id=entry.pk, actor=api_actor(request), **data)
        return Response(FaqEntrySerializer(entry).data)

    @extend_schema(summary="Delete an FAQ entry", responses={204: OpenApiResponse(description="Deleted.")})
    def destroy(self, request: Request, pk: str) -> Response:
        entry = self.get_object()
        faq_entry_delete(entry_id=entry.pk, actor=api_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentConfigView(GenericAPIView):
    """The receptionist's configuration: one per business."""

    serializer_class = AgentConfigSerializer
    permission_classes = [MemberReadsAdminWrites]
    pagination_class = None

    def get_object(self) -> AgentConfig:
        config = AgentConfig.objects.order_by("pk").first()
        if config is None:
            raise Http404
        return config

    @extend_schema(summary="Get the agent's configuration", responses={200: AgentConfigSerializer})
    def get(self, request: Request) -> Response:
        return Response(AgentConfigSerializer(self.get_object()).data)

    @extend_schema(
        summary="Change the agent's configuration",
        description="Only the settings sent change; the next call uses them.",
        request=AgentConfigUpdateSerializer,
        responses={200: AgentConfigSerializer},
    )
    def patch(self, request: Request) -> Response:
        config = self.get_object()
        data = validated(AgentConfigUpdateSerializer, request)
        config = agent_config_update(config=config, actor=api_actor(request), **data)
        return Response(AgentConfigSerializer(config).data)
