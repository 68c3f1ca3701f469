"""The model names the seeds list, with the version their limits are stated for.

Kling adds and retires models without notice, so a name missing here is sent
with a warning, never refused; model-specific limits apply only to names listed
here (both naming schemes the seeds use: ``kling-v1-6`` and ``MaaS_KL_V1.6``).
"""

from __future__ import annotations

import attrs

__all__ = ["KNOWN_MODELS", "KnownModel", "known_model"]


@attrs.frozen
class KnownModel:
    """A model name the seeds list.

    Attributes:
        name: The name as the seeds spell it.
        version: ``(major, minor)``; ``None`` for names without one (Omni).
        seeds: The seed files that list it.
    """

    name: str
    version: tuple[int, int] | None
    seeds: tuple[str, ...]


_NAMES: tuple[tuple[str, tuple[int, int] | None, tuple[str, ...]], ...] = (
    ("kling-v1", (1, 0), ("000", "003", "004")),
    ("kling-v1-5", (1, 5), ("000",)),
    ("kling-v1-6", (1, 6), ("000",)),
    ("kling-v2", (2, 0), ("000",)),
    ("kling-v2-new", (2, 0), ("000",)),
    ("kling-v2-1", (2, 1), ("000",)),
    ("kling-v2-master", (2, 0), ("000",)),
    ("kling-v2-1-master", (2, 1), ("000",)),
    ("kling-v2-5-turbo", (2, 5), ("000",)),
    ("kling-v2-6", (2, 6), ("000",)),
    ("kling-v2.6", (2, 6), ("000",)),
    ("kling-v3", (3, 0), ("000",)),
    ("MaaS_KL_V1", (1, 0), ("004",)),
    ("MaaS_KL_V1.5", (1, 5), ("004",)),
    ("MaaS_KL_V1.6", (1, 6), ("003", "004")),
    ("MaaS_KL_V2.1", (2, 1), ("003",)),
    ("MaaS_KL_V2.1_Master", (2, 1), ("003",)),
    ("MaaS_KeLing_V1.6", (1, 6), ("003",)),
    ("MaaS_KeLing_V2.1", (2, 1), ("003",)),
    ("MaaS_KeLing_V2.1_master", (2, 1), ("000", "003")),
    ("MaaS_KeLing_V2.5_turbo", (2, 5), ("000", "003")),
    ("MaaS_KeLing_V2.6", (2, 6), ("000", "003")),
    ("MaaS_KeLing_3.0_video", (3, 0), ("000",)),
    ("MaaS_KeLing_O3", None, ("001",)),
)

#: Every model name a seed lists, by name.
KNOWN_MODELS: dict[str, KnownModel] = {
    name: KnownModel(name, version, seeds) for name, version, seeds in _NAMES
}


def known_model(name: str) -> KnownModel | None:
    """What the seeds say about a model name.

    Args:
        name: The ``model_name`` value.

    Returns:
        The known model, or ``None`` for a name no seed lists.
    """
    return KNOWN_MODELS.get(name.strip())
