"""Django, configured once for the whole pytest process: the Django and DRF tests share these base settings and
change what each needs with ``override_settings`` (BASTION, MIDDLEWARE, ROOT_URLCONF), which Django supports at any
time — unlike ``settings.configure``, which it allows once per process.

``REST_FRAMEWORK`` is fixed here, and is the example project's: DRF reads its ``DEFAULT_*_CLASSES`` into
``APIView``'s class attributes when ``rest_framework.views`` is first imported, so an override made later would not
reach them (``EXCEPTION_HANDLER`` is read per request, and may be overridden)."""

from __future__ import annotations

import django
from django.conf import settings

#: the apps of the test settings and of examples/django_app/settings.py (changing them would reload the registry)
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]

MIDDLEWARE = ["bastion.integrations.django.BastionMiddleware"]

#: DRF with bastion's classes, throttle and exception handler, JSON only
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bastion.integrations.drf.BastionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["bastion.integrations.drf.BastionThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "bastion.integrations.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

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
        REST_FRAMEWORK=REST_FRAMEWORK,
    )
    django.setup()

__all__ = ["INSTALLED_APPS", "MIDDLEWARE", "REST_FRAMEWORK"]
