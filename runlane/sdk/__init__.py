"""The SDK: lives in the training process and must never block or crash it.

Import rule: may import ``runlane.journal``, ``entities``, ``errors``, ``naming``, ``statuses``, ``config``,
``liveness``, ``recovery``, ``drain`` and ``store`` (through ``writer``, the link to the store and its drain);
never ``runlane.server``.
"""
