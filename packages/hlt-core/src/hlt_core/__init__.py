"""The glue of hlt.

Its sub-packages tell a run's story: ``jobs`` (a run in its folder), ``composing`` (a
config to built pieces), ``training`` (the fit), ``results`` (what a run leaves),
``storing`` (files a kill cannot half-write); docs/architecture.md has their layers.

Kept import-light on purpose: config-only commands (``--help``, ``--cfg``, ``--info``)
import ``hlt_core.schemas`` and ``hlt_core.discovery`` and must not pay for torch or
Lightning. Import ``hlt_core.training.module`` or ``hlt_core.run`` for the heavy parts.
"""
