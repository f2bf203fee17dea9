"""Settings of the example project: DRF with bastion's authentication, permissions, throttle and error responses.

Run it::

    export BASTION_PEPPER=... BASTION_TOKENS_URL=sqlite:///tokens.db DJANGO_SETTINGS_MODULE=examples.django_app.settings
    gunicorn examples.django_app.wsgi

``BASTION_AUDIT_FILE`` names a file for the audit records, one JSON object a line (default: standard error).
"""

from __future__ import annotations

import os
from typing import Any

import bastion

DEBUG = False
# an example's placeholder: a real project reads its own from the environment
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
DATABASES: dict[str, Any] = {}  # bastion's tokens live in their own store; the API needs no Django models
ROOT_URLCONF = "examples.django_app.urls"
USE_TZ = True

MIDDLEWARE = ["bastion.integrations.django.BastionMiddleware"]

BASTION = {
    "AUTHENTICATOR": "examples.django_app.auth.make_authenticator",
    "RULES": [bastion.Rule("/health", auth="none")],
    "THROTTLE_LIMITER": "examples.django_app.auth.THROTTLE",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bastion.integrations.drf.BastionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["bastion.integrations.drf.BastionThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "bastion.integrations.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

_AUDIT_FILE = os.environ.get("BASTION_AUDIT_FILE")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "bastion.audit.JSONFormatter"}},
    "handlers": {
        "audit": (
            {"class": "logging.FileHandler", "filename": _AUDIT_FILE, "formatter": "json"}
            if _AUDIT_FILE
            else {"class": "logging.StreamHandler", "formatter": "json"}
        )
    },
    "loggers": {"bastion.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False}},
}
