"""The Django REST framework server of ``python -m bastion bench http``: one ``APIView`` under gunicorn.

``BASTION_BENCH_HTTP_CASE`` chooses the guard: ``bare`` (no authentication), ``bastion``
(``bastion.wsgi.AuthMiddleware`` around Django's WSGI handler), ``simplejwt``
(djangorestframework-simplejwt's ``JWTAuthentication``: HS256, then the user loaded from the database, as it
is by default) or ``knox`` (django-rest-knox: a token digest looked up in the database). ``python -m
bastion.bench.httpdjango setup`` creates the SQLite database, a user and a token of each peer, written to
``drf_tokens.json`` in the run's folder.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from typing import Any

from bastion.bench.httpapps import CASE_ENV, DIR_ENV, RULES, authenticator
from bastion.bench.middleware import SECRET
from bastion.bench.webapps import PATH

TOKENS_FILE = "drf_tokens.json"
_AUTH = {
    "simplejwt": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "knox": ["knox.auth.TokenAuthentication"],
}


def configure() -> tuple[str, str]:
    """Django's settings for the case in the environment; returns (folder, case)."""
    import django
    from django.conf import settings

    folder, case = os.environ[DIR_ENV], os.environ.get(CASE_ENV, "bare")
    guarded = case in _AUTH
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET.decode(),
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        MIDDLEWARE=[],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "knox"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(folder, "django.db")}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": _AUTH.get(case, []),
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"] if guarded else [],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
        SIMPLE_JWT={
            "SIGNING_KEY": SECRET.decode(),
            "ALGORITHM": "HS256",
            "ACCESS_TOKEN_LIFETIME": timedelta(hours=2),
            "AUTH_HEADER_TYPES": ("Bearer",),
        },
        REST_KNOX={"AUTH_HEADER_PREFIX": "Bearer"},
    )
    django.setup()
    return folder, case


def _urlpatterns() -> list[Any]:
    from django.urls import path
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class Items(APIView):
        def get(self, request: Request) -> Response:
            return Response({"items": []})

    return [path(PATH.lstrip("/"), Items.as_view())]


urlpatterns: list[Any] = []


def application() -> Any:
    """gunicorn ``'bastion.bench.httpdjango:application()'``."""
    folder, case = configure()
    urlpatterns.extend(_urlpatterns())
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    if case == "bastion":
        import bastion

        return bastion.wsgi.AuthMiddleware(app, authenticator(folder), rules=RULES)
    return app


def setup() -> None:
    """Create the database, the user, a knox token and a simplejwt access token (in ``drf_tokens.json``)."""
    folder, _ = configure()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from knox.models import AuthToken  # type: ignore[import-untyped]
    from rest_framework_simplejwt.tokens import AccessToken

    call_command("migrate", verbosity=0, interactive=False)
    user = User.objects.create_user("bench")
    _, knox_token = AuthToken.objects.create(user=user)
    tokens = {"knox": knox_token, "simplejwt": str(AccessToken.for_user(user))}
    with open(os.path.join(folder, TOKENS_FILE), "w", encoding="utf-8") as f:
        json.dump(tokens, f)


if __name__ == "__main__" and sys.argv[1:] == ["setup"]:
    setup()
