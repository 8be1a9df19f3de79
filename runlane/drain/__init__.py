"""The drain: tails a process's journals into its store, off the training process's GIL.

Import rule (tests/test_package.py): ``drain`` may import the foundation modules (``errors``, ``journal``,
``config``, ``spool``, ``liveness``, ``diagnostics``, ...), ``store`` and ``recovery``; never ``runlane.sdk``
or ``api`` (it is the SDK's helper, not part of it). ``loop`` is the one place that decides how journal
bytes become store transactions; ``protocol`` is what a training process and its drain process agree on
without a pipe; ``__main__`` is that process.
"""
