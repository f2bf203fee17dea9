"""Framework integrations: the same Authenticator, the same refusals and the same audit record as the middleware.

- :mod:`bastion.integrations.fastapi` — ``BastionBearer(auth)``: the current principal as a security dependency
  (``Security(bearer, scopes=[...])``, ``bearer.role("admin")``, ``bearer.optional``), the bearer scheme and each
  route's scopes in the OpenAPI document, and ``bearer.install(app)`` rendering bastion's refusals.
- :mod:`bastion.integrations.starlette` — ``Guard(auth).requires(scopes=..., roles=...)`` for request and
  WebSocket endpoints, sync or async; ``request.user`` / ``request.auth`` as the middleware sets them.

Each works behind :class:`bastion.asgi.AuthMiddleware` (reusing its decision: a token is read once per request)
or alone (deciding the request itself with ``await auth.decide_async(...)``). Neither module is imported by
``import bastion``: each needs its framework installed (``pip install bastion[fastapi]``).
"""
