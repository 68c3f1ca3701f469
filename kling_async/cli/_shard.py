"""``--shard K/N``: one jobs file split across N processes or hosts by a stable hash of each key.

Job ``key`` belongs to shard ``sha256(key) mod N``, numbered from 1: the same key
always lands in the same shard, on any machine and any Python, whatever the order
of the lines, so every host can read the whole file and run only its part. Each
shard has its own journal and results file in the shared output folder
(``journal-K-of-N.sqlite`` and ``results-K-of-N.jsonl``), so shards never contend
for one journal's lock; ``kling-async report OUT`` reads every ``results*.jsonl``
there and merges them into one page.

Changing N moves keys between shards: finish a sharded batch with the N it was
started with.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Sequence
from typing import TypeVar

import attrs

__all__ = ["Shard", "parse_shard", "shard_of"]

_FORM = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")
#: More shards than this is a typo, not a plan.
MAX_SHARDS = 10_000

_T = TypeVar("_T")


def shard_of(key: str, count: int) -> int:
    """The shard (1 to ``count``) a job key belongs to.

    Args:
        key: The job's key.
        count: How many shards there are (1 or more).

    Returns:
        ``sha256(key) mod count``, plus one.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") % count + 1


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count``.

    Attributes:
        index: This shard, 1 to ``count``.
        count: How many shards the jobs are split into.
    """

    index: int
    count: int

    @property
    def label(self) -> str:
        """``K-of-N``, the part of the shard's file names that names it."""
        return f"{self.index}-of-{self.count}"

    @property
    def results_name(self) -> str:
        """The shard's results file name (``results-K-of-N.jsonl``)."""
        return f"results-{self.label}.jsonl"

    @property
    def journal_name(self) -> str:
        """The shard's journal file name (``journal-K-of-N.sqlite``)."""
        return f"journal-{self.label}.sqlite"

    def owns(self, key: str) -> bool:
        """Whether a job key belongs to this shard.

        Args:
            key: The job's key.

        Returns:
            ``True`` when :func:`shard_of` names this shard.
        """
        return shard_of(key, self.count) == self.index

    def select(self, items: Sequence[_T], keys: Sequence[str]) -> list[_T]:
        """The items whose key this shard owns, in their order.

        Args:
            items: Anything, one per key.
            keys: The key of each item.

        Returns:
            The selected items.
        """
        return [item for item, key in zip(items, keys, strict=True) if self.owns(key)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """Read a ``--shard`` value: ``K/N`` with ``1 <= K <= N``.

    Args:
        text: The argument as typed.

    Returns:
        The shard.

    Raises:
        argparse.ArgumentTypeError: Not of the form ``K/N``, or ``K`` outside 1..N.
    """
    match = _FORM.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected K/N such as 2/4 (this process runs part K of N), got {text!r}"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"N must be 1 to {MAX_SHARDS}, got {count}")
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"K must be 1 to N ({count}), got {index}")
    return Shard(index, count)
