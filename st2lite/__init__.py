"""st2lite: an embedded, single-machine runtime that loads StackStorm packs as st2 does.

It knows nothing of any particular pack. Modules under ``st2lite/pack_env`` run inside a
pack's own virtualenv (standard library only there, plus what the pack installs).
"""

__version__ = "0.1.0"
