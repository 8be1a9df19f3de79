"""The SDK: lives in the training process and must never block or crash it.

Import rule (tests/test_package.py): may import the foundation modules, ``store``, ``recovery`` and
``drain`` (through ``writer``, this process's link to a store and its drain); never ``runlane.api``,
``cli`` or a server. ``sdk.capture`` is stricter: foundation modules only.
"""
