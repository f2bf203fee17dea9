"""The API: who am I, the reports (scope read:reports), deleting one (role admin), and an open health check."""

from __future__ import annotations

import bastion
from bastion.integrations.drf import HasRole, HasScopes
from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _principal(request: Request) -> bastion.Principal:
    assert isinstance(request.auth, bastion.Principal)  # BastionAuthentication + IsAuthenticated
    return request.auth


class Me(APIView):
    def get(self, request: Request) -> Response:
        p = _principal(request)
        return Response({"subject": p.subject, "scopes": sorted(p.scopes), "roles": sorted(p.roles)})


class Reports(APIView):
    permission_classes = (HasScopes,)
    required_scopes = ("read:reports",)

    def get(self, request: Request) -> Response:
        return Response({"reports": [{"id": "1", "owner": _principal(request).subject}]})


class Report(APIView):
    permission_classes = (HasRole,)
    required_roles = ("admin",)

    def delete(self, request: Request, report_id: str) -> Response:
        return Response({"deleted": report_id})
