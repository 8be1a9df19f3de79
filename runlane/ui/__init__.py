"""The web UI: static files under ``static/`` (no build step), served at ``/`` by ``runlane ui`` and
``runlane server`` (``runlane.server.static``); design notes in docs/ui.md."""
