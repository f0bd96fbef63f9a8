"""Admission webhooks: `/inject` (mutating, pods) and `/validate` (the mesh's CRDs).

A Starlette app (`webhook.app.create_app`) served by uvicorn over TLS (`webhook.server`) with a
serving certificate reloaded from disk (`webhook.tls`). The app is pure request/response logic
with its seams (injection config, injector, validator, readiness) passed to the factory.
"""
