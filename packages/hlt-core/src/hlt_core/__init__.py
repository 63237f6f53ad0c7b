"""The glue of hlt.

Kept import-light on purpose: config-only commands (``--help``, ``--cfg``, ``--info``)
import ``hlt_core.schemas`` and ``hlt_core.discovery`` and must not pay for torch or
Lightning. Import ``hlt_core.training.module`` or ``hlt_core.run`` for the heavy parts.
"""
