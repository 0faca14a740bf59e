"""`agentlog log verify`: check every frame of every segment without changing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eventlog.errors import CorruptLogError
from eventlog.file.segment import scan_segment, segment_paths

__all__ = ["VerifyReport", "verify_directory"]


@dataclass(slots=True)
class VerifyReport:
    """Totals of a verification, the torn tails found (repairable) and the corruptions (not)."""

    topics: int = 0
    partitions: int = 0
    segments: int = 0
    batches: int = 0
    records: int = 0
    bytes: int = 0
    torn_tails: list[tuple[str, int]] = field(default_factory=list)
    corruptions: list[CorruptLogError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is corrupt (a torn tail is a normal crash artefact, repaired on open)."""
        return not self.corruptions


def verify_directory(root: Path) -> VerifyReport:
    """Decode and check every batch under `root`; a missing `topics` directory is an error."""
    topics_dir = Path(root) / "topics"
    if not topics_dir.is_dir():
        raise FileNotFoundError(f"{root} holds no agentlog data (no topics directory)")
    report = VerifyReport()
    for topic_dir in sorted(p for p in topics_dir.iterdir() if (p / "topic.json").exists()):
        report.topics += 1
        partitions = sorted(
            (p for p in topic_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
        )
        for partition_dir in partitions:
            report.partitions += 1
            _verify_partition(partition_dir, report)
    return report


def _verify_partition(directory: Path, report: VerifyReport) -> None:
    paths = segment_paths(directory)
    expected = paths[0][0] if paths else 0
    for index, (base_offset, path) in enumerate(paths):
        report.segments += 1
        if base_offset != expected:
            report.corruptions.append(
                CorruptLogError(str(path), 0, f"segment starts at {base_offset}, expected {expected}")
            )
            return
        later_empty = all(p.stat().st_size == 0 for _, p in paths[index + 1 :])
        scan = scan_segment(path, base_offset, is_newest=later_empty, deep=True)
        report.batches += scan.batches
        report.records += scan.records
        report.bytes += scan.segment.size
        if scan.corruption is not None:
            report.corruptions.append(scan.corruption)
            return
        if scan.torn_at is not None:
            report.torn_tails.append((str(path), scan.torn_at))
            return
        expected = scan.segment.end_offset
