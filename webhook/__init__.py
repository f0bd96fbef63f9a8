"""Admission webhooks: `/inject` (mutating, pods) and `/validate` (the mesh's CRDs).

An ASGI app (`webhook.app.create_app`: the admission routes as plain ASGI, `webhook.route`, the
rest Starlette) served by uvicorn over TLS (`webhook.server`) with a serving certificate
reloaded from disk (`webhook.tls`). The app is pure request/response logic with its seams
(injection config, injector, validator, readiness) passed to the factory.
"""
