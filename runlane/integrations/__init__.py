"""Loggers and callbacks that let training frameworks record runlane runs with one line.

- ``from runlane.integrations.lightning import RunlaneLogger``: a Lightning ``Logger``
  (``lightning.pytorch``; ``runlane.integrations.pytorch_lightning`` for the ``pytorch_lightning`` package)
- ``from runlane.integrations.transformers import RunlaneCallback``: a Hugging Face ``TrainerCallback``
- ``from runlane.integrations.keras import RunlaneCallback``: a Keras 3 ``Callback`` (any backend)

Each needs its framework, named by an extra (``pip install 'runlane[lightning]'``, ``[transformers]``,
``[keras]``); ``import runlane`` never imports them. Import rule: built only on runlane's public API
(``import runlane`` and the names in ``runlane.__all__``), the standard library, their own framework and
``runlane.integrations._common``; a test holds them to it.
"""
