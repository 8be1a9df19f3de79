"""Drop-in modules for users of other trackers: change one import line and keep your code.

- ``import runlane.compat.pluto as pluto``
- ``import runlane.compat.runicorn as rn``
- ``import runlane.compat.mlflow as mlflow``

Import rule: these modules are built only on runlane's public API (``import runlane`` and the names in
``runlane.__all__``), never on its internals; a test holds them to it.
"""
