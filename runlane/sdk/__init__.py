"""The SDK: lives in the training process and must never block or crash it.

Import rule: may import ``runlane.journal``, ``entities``, ``errors``, ``naming``, ``statuses``, ``config``,
``liveness``, ``recovery`` and ``store`` (only through the writer thread); never ``runlane.server``.
"""
