"""Django, configured once for the whole pytest process: the Django and DRF tests share these base settings and
change what each needs with ``override_settings`` (BASTION, MIDDLEWARE, ROOT_URLCONF, REST_FRAMEWORK), which Django
supports at any time — unlike ``settings.configure``, which it allows once per process."""

from __future__ import annotations

import django
from django.conf import settings

#: the apps of the test settings and of examples/django_app/settings.py (changing them would reload the registry)
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only",
        ALLOWED_HOSTS=["testserver", "localhost", "127.0.0.1"],
        INSTALLED_APPS=INSTALLED_APPS,
        DATABASES={},
        ROOT_URLCONF="tests.django_urls",
        MIDDLEWARE=[],
        USE_TZ=True,
        REST_FRAMEWORK={},
    )
    django.setup()

MIDDLEWARE = ["bastion.integrations.django.BastionMiddleware"]

#: DRF with bastion's classes and exception handler, JSON only
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bastion.integrations.drf.BastionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "bastion.integrations.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

__all__ = ["INSTALLED_APPS", "MIDDLEWARE", "REST_FRAMEWORK"]
