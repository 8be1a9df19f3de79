"""The tracking server: one ASGI app (FastAPI, run by uvicorn) around any ``Store``.

``create_app`` (``runlane.server.app``) builds it; ``runlane server`` and ``runlane ui`` run it
(``runlane.server.serve``). Import rule: the server imports the store, the wire format and the entities,
never ``runlane.sdk``; nothing in ``runlane`` imports the server except those two CLI commands, so
``import runlane`` never loads FastAPI.
"""
