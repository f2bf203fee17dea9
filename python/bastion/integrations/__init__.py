"""Framework integrations: the same Authenticator, the same refusals and the same audit record as the middleware.

- :mod:`bastion.integrations.fastapi` — ``BastionBearer(auth)``: the current principal as a security dependency
  (``Security(bearer, scopes=[...])``, ``bearer.role("admin")``, ``bearer.optional``), the bearer scheme and each
  route's scopes in the OpenAPI document, and ``bearer.install(app)`` rendering bastion's refusals.
- :mod:`bastion.integrations.starlette` — ``Guard(auth).requires(scopes=..., roles=...)`` for request and
  WebSocket endpoints, sync or async; ``request.user`` / ``request.auth`` as the middleware sets them.
- :mod:`bastion.integrations.flask` — ``Bastion(app, auth)`` / ``init_app``, ``@requires(scopes=, roles=)``,
  ``current_principal`` and ``g.principal``; blueprints.
- :mod:`bastion.integrations.django` — ``BastionMiddleware`` configured from ``settings.BASTION`` (sync and async),
  ``request.principal``, an optional user loader, ``@requires`` for views.
- :mod:`bastion.integrations.drf` — ``BastionAuthentication``, ``HasScopes`` / ``HasRole``, ``BastionThrottle``
  and ``exception_handler`` for Django REST framework.

Each works behind :class:`bastion.asgi.AuthMiddleware` / :class:`bastion.wsgi.AuthMiddleware` (reusing its
decision: a token is read once per request) or alone (deciding the request itself). None is imported by
``import bastion``: each needs its framework (``pip install 'bastion[fastapi]'``, ``[flask]``, ``[django]``).
"""
