"""The test API of tests.request_support as Django views (sync and async) and DRF views."""

from __future__ import annotations

from typing import Any

import bastion
from bastion.integrations.django import requires
from bastion.integrations.drf import BastionThrottle, HasRole, HasScopes
from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tests.request_support import Boom

#: the limiter of ThrottledView: one request an hour in the tier "tight", unlimited for "admin"
THROTTLE = bastion.RateLimiter(
    {"tight": bastion.Rate(1, per=3600, burst=1), "default": bastion.Rate(100_000, per=1), "admin": None},
    default="default",
)


def _who(request: HttpRequest) -> dict[str, Any]:
    p = getattr(request, "principal", None)
    ctx = getattr(request, "bastion", None)
    return {
        "subject": p.subject if p is not None else None,
        "request_id": ctx.request_id if ctx is not None else None,
        "user": str(getattr(request, "user", None)),
    }


def me(request: HttpRequest, **kw: str) -> JsonResponse:
    return JsonResponse({**_who(request), **kw})


async def async_me(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


@requires(scopes=["read:reports"])
def decorated(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


@requires(roles=["admin"])
async def async_decorated(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_who(request))


def boom(request: HttpRequest) -> JsonResponse:
    raise Boom("application bug")


def refuse(request: HttpRequest) -> JsonResponse:
    raise bastion.Forbidden()


def _principal(request: Request) -> dict[str, Any]:
    auth = request.auth
    return {"subject": auth.subject if isinstance(auth, bastion.Principal) else None, "user": str(request.user)}


class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response(_principal(request))


class OpenView(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response(_principal(request))


class ReportsView(APIView):
    permission_classes = (HasScopes,)
    required_scopes = ("read:reports",)

    def get(self, request: Request) -> Response:
        return Response(_principal(request))


class ReportView(APIView):
    permission_classes = (HasRole,)
    required_roles = ("admin",)

    def delete(self, request: Request, id: str) -> Response:
        return Response({**_principal(request), "deleted": id})


class ThrottledView(APIView):
    throttle_classes = (BastionThrottle,)

    def get(self, request: Request) -> Response:
        return Response(_principal(request))


class Never(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class NeverView(APIView):
    permission_classes = (Never,)

    def get(self, request: Request) -> Response:
        raise AssertionError("unreachable")


class Failing(BaseAuthentication):
    def authenticate(self, request: Request) -> None:
        raise AuthenticationFailed("another scheme's refusal")


class FailingView(APIView):
    authentication_classes = (Failing,)

    def get(self, request: Request) -> Response:
        raise AssertionError("unreachable")


class BoomView(APIView):
    def get(self, request: Request) -> Response:
        raise Boom("application bug")


class RefuseView(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise bastion.InsufficientScope(required_scopes=["write:reports"])


urlpatterns = [
    path("health", me),
    path("public/info", me),
    path("api/me", me),
    path("api/reports", me),
    path("api/reports/<id>", me),
    path("api/boom", boom),
    path("api/refuse", refuse),
    path("api/decorated", decorated),
    path("api/async/me", async_me),
    path("api/async/decorated", async_decorated),
    path("drf/me", MeView.as_view()),
    path("drf/open", OpenView.as_view()),
    path("drf/reports", ReportsView.as_view()),
    path("drf/reports/<id>", ReportView.as_view()),
    path("drf/throttled", ThrottledView.as_view()),
    path("drf/boom", BoomView.as_view()),
    path("drf/never", NeverView.as_view()),
    path("drf/failing", FailingView.as_view()),
    path("drf/refuse", RefuseView.as_view()),
]
