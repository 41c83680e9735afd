"""Resource bounds applied while streaming an untrusted tarball."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


class ArchiveLimits(BaseModel):
    """Bounds that stop a hostile archive early, before it costs memory, disk or minutes.

    Defaults fit large GPU models (a 30 GB LLM shard set) but not a gzip bomb: the ratio bound
    trips once a little output exists, because real model weights barely compress.
    """

    model_config = ConfigDict(frozen=True)

    max_members: int = Field(default=10_000, gt=0)
    max_member_bytes: int = Field(default=32 * GiB, gt=0)
    max_total_bytes: int = Field(default=64 * GiB, gt=0)
    max_compression_ratio: float = Field(default=200.0, gt=1)
    # Below this much output the ratio is not judged: tiny archives of text compress very well.
    ratio_grace_bytes: int = Field(default=16 * MiB, ge=0)
    # Members kept in memory (configs, model.py, test cases) are at most this large.
    max_small_member_bytes: int = Field(default=1 * MiB, gt=0)
    # pax / GNU long-name headers are buffered, so they get their own tight bound.
    max_tar_metadata_bytes: int = Field(default=1 * MiB, gt=0)
