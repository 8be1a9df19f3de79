"""The drain: tails a process's journals into its store, off the training process's GIL.

Import rule: ``drain`` may import ``runlane.journal``, ``store``, ``recovery``, ``liveness``, ``errors``
and ``logs``; never ``runlane.sdk`` (it is the SDK's helper, not part of it). ``loop`` is the one place
that decides how journal bytes become store transactions; ``channel`` frames the messages between the
training process and a drain process; ``__main__`` is that process.
"""
