"""Branches and time travel in a node (DESIGN §5).

**Branches.** A branch belongs to the tenant that made it: the tenant's branch `NAME` is the topic
`branch.NAME` for the open-mode tenant `default` and `branch.t<16 hex of a hash of the tenant>.NAME`
for any other, made by `log.create_branch` (zero-copy: it reads its parent below the fork cut, then
its own records). A tenant sees, reads, writes and deletes only its own branches (another tenant's
is 404, as if absent); names starting `t<16 hex>.` are reserved for that. Its parent is main (the
node's `settings.topic`, branch name `main`, shared by every tenant) or another branch of the tenant.
`Branches` holds one engine, state and producer per branch, started on first use (rebuilt from the
newest usable snapshot, else from zero, then tailing) and stopped when the branch is deleted or the
node stops. A write on a branch appends to the branch's own topic only: its parent never sees it,
and the branch never sees what the parent appends after the fork. Branches run no TTL sweeper and
write no snapshots of their own. A branch with branches of its own cannot be deleted (409
`branch_in_use`).

**Time travel.** `as_of` is a cut in token form (`0:12,3:40`; partitions not named mean 0) or a log
time: `t:<ms since the epoch>` or ISO-8601 (a timestamp without a UTC offset is UTC); a time names
`cut_at_time(time)`, i.e. every record the log had stamped by then. A read as of a cut is answered
from a scratch state rebuilt to exactly that cut (an LRU of the last `AS_OF_STATES` states, keyed by
topic and cut; a cut equal to the branch's applied cut copies the live state instead of rebuilding).
A tenant may have at most `AS_OF_REBUILDS_PER_TENANT_MAX` such states being made or waiting to be
made at once; one more is refused with 429 `too_many_rebuilds` and a `Retry-After`.
A cut past what the branch has applied waits (bounded) while the log holds it, and is refused with
409 `as_of_not_applied` past the log's end or after the wait. Reads hide expired values by a reader's
clock: as of a time, that time; as of a cut, the newest log timestamp just below the cut
(`log_time_at`; 0 for the empty cut).

**Run positions.** The runs model keeps each event's `event_id` (its command id) and `log_time_ms`,
not its offset: the cut just after event `seq` of a run is found by a binary search of the run's
partition for the event's log time, then a short scan for its command id (`find_command`); the
other partitions are cut at the event's log time (`cut_at_time`).
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from commands import CommandProducer
from commands.routing import scope_key
from eventlog.base import EventLog
from eventlog.errors import InvalidRequestError, TopicExistsError, TopicInUseError, TopicNotFoundError
from eventlog.partitioner import partition_for
from eventlog.records import TopicInfo
from projections.cut import CutError, cut_pattern, parse_token, partition_pattern
from projections.engine import Engine, EngineState
from projections.runs import RunsModel
from projections.timetravel import TimeTravelError, cut_at_time, find_command, log_time_at, rebuild

__all__ = [
    "AS_OF_REBUILDS_PER_TENANT_MAX",
    "AS_OF_STATES",
    "BRANCH_TOPIC_PREFIX",
    "MAIN",
    "AsOf",
    "Branch",
    "BranchError",
    "Branches",
    "check_branch_name",
    "tenant_branch_prefix",
    "cut_token",
    "parse_as_of",
]

#: The name of the node's main topic as a branch.
MAIN: Final = "main"
#: Branch `NAME` lives in topic `branch.NAME`.
BRANCH_TOPIC_PREFIX: Final = "branch."
#: Longest branch name.
MAX_BRANCH_NAME_CHARS: Final = 128
#: Scratch states kept for reads as of a cut (each is a full copy of the models at that cut).
AS_OF_STATES: Final = 4
#: A branch name: `[A-Za-z0-9._-]+` but not `.` or `..` (excluded by alternation, so the pattern
#: is exact in any regex dialect); at most `MAX_BRANCH_NAME_CHARS`.
BRANCH_NAME_PATTERN: Final = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)$"
_BRANCH_NAME: Final = re.compile(BRANCH_NAME_PATTERN)
#: Scratch states (as_of reads, cut diffs) one tenant may have in making or waiting at once.
AS_OF_REBUILDS_PER_TENANT_MAX: Final = 2
#: Seconds a caller refused for too many rebuilds is told to wait (`Retry-After`).
REBUILD_RETRY_AFTER_S: Final = 1
#: The open-mode tenant, whose branches keep the plain `branch.NAME` topics.
DEFAULT_TENANT: Final = "default"
_RESERVED_NAME: Final = re.compile(r"t[0-9a-f]{16}\.")
_CUT_TEXT: Final = re.compile(r"\d+:\d+(?:,\d+:\d+)*")
#: Every `as_of` the node takes: a cut, `t:<ms>`, or an ISO-8601 date or time (UTC unless an offset
#: is given). The OpenAPI document publishes it; `parse_as_of` refuses what does not match.
_AS_OF_TIME: Final = (
    r"t:\d{1,15}"
    r"|[1-9]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?"
)


def as_of_pattern(partitions: int | None = None) -> str:
    """What `as_of` looks like; with `partitions`, a cut names only partitions the topic has."""
    cut = cut_pattern() if partitions is None else cut_pattern(partition_pattern(partitions))
    return rf"^(?:{cut}|{_AS_OF_TIME})$"


AS_OF_PATTERN: Final = as_of_pattern()
_AS_OF: Final = re.compile(AS_OF_PATTERN)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class BranchError(Exception):
    """A branch or as-of request that cannot be served; the API answers it as a problem of `status`."""

    def __init__(self, status: int, code: str, detail: str, retry_after_s: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.extra = extra


@dataclass(frozen=True, slots=True)
class AsOf:
    """A resolved `as_of`: the cut to read at and the reader's clock there."""

    cut: tuple[int, ...]
    clock_ms: int


class Branch:
    """One branch a node serves: its topic, the engine folding it, and a producer appending to it."""

    def __init__(self, name: str, topic: str, engine: Engine, producer: CommandProducer) -> None:
        self.name = name
        self.topic = topic
        self.engine = engine
        self.producer = producer

    @property
    def state(self) -> EngineState:
        """The live state of the branch."""
        return self.engine.state

    def token(self) -> str:
        """A token for everything the branch has applied."""
        return cut_token(self.engine.applied)


def cut_token(cut: Sequence[int]) -> str:
    """A full cut in token form: `0:12,1:0,...`."""
    return ",".join(f"{p}:{o}" for p, o in enumerate(cut))


def check_branch_name(name: str) -> str:
    """`name` if it is a valid branch name (`[A-Za-z0-9._-]+`, not `.`/`..`, not `t<16 hex>.`), else a 400."""
    if len(name) > MAX_BRANCH_NAME_CHARS or not _BRANCH_NAME.fullmatch(name) or name in (".", ".."):
        raise BranchError(
            400, "bad_branch", f"branch name {name!r} must match [A-Za-z0-9._-]{{1,{MAX_BRANCH_NAME_CHARS}}}"
        )
    if _RESERVED_NAME.match(name):
        raise BranchError(400, "bad_branch", f"branch names starting t<16 hex>. are reserved: {name!r}")
    return name


def tenant_branch_prefix(tenant: str) -> str:
    """The topic prefix of `tenant`'s branches: `branch.` for `default`, else `branch.t<16 hex>.`."""
    if tenant == DEFAULT_TENANT:
        return BRANCH_TOPIC_PREFIX
    return f"{BRANCH_TOPIC_PREFIX}t{hashlib.blake2b(tenant.encode(), digest_size=8).hexdigest()}."


def parse_as_of(text: str, partitions: int) -> list[int] | int:
    """An `as_of`: a cut (`0:12,3:40`, one offset per partition, unnamed ones 0) or a log time in ms."""
    if not _AS_OF.fullmatch(text):
        raise BranchError(
            400, "bad_as_of", f"as_of {text[:80]!r} is neither a cut (0:12,3:40), t:<ms> nor an ISO-8601 time"
        )
    if text.startswith("t:"):
        digits = text[2:]
        if not digits.isdigit() or len(digits) > 18:
            raise BranchError(400, "bad_as_of", f"as_of {text!r}: t: takes milliseconds since the epoch")
        return int(digits)
    if _CUT_TEXT.fullmatch(text):
        try:
            named = parse_token(text, partitions)
        except CutError as error:
            raise BranchError(400, "bad_as_of", f"as_of {text!r}: {error}") from error
        return [named.get(p, 0) for p in range(partitions)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BranchError(
            400, "bad_as_of", f"as_of {text!r} is neither a cut (0:12,3:40), t:<ms> nor an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class Branches:
    """The branches one node serves (main included), and scratch states of them as of past cuts."""

    def __init__(
        self,
        log: EventLog,
        main_topic: str,
        main_engine: Engine,
        main_producer: CommandProducer,
        snapshot_dir: Path | None = None,
    ) -> None:
        self.log = log
        self.snapshot_dir = snapshot_dir
        self.main = Branch(MAIN, main_topic, main_engine, main_producer)
        self._started: dict[str, Branch] = {}
        self._start_lock = asyncio.Lock()
        self._as_of: OrderedDict[tuple[str, tuple[int, ...]], EngineState] = OrderedDict()
        self._rebuild_lock = asyncio.Lock()
        self._rebuilds: dict[str, int] = {}
        self._closed = False

    # ----------------------------------------------------------------------------------- naming

    def topic_of(self, tenant: str, name: str) -> str:
        """The topic of `tenant`'s branch `name` (which need not exist)."""
        return self.main.topic if name == MAIN else tenant_branch_prefix(tenant) + check_branch_name(name)

    def name_of(self, tenant: str, topic: str) -> str | None:
        """The name of `topic` as `tenant`'s branch, or None unless it is main or the tenant's, descending from main."""
        if topic == self.main.topic:
            return MAIN
        prefix = tenant_branch_prefix(tenant)
        name = topic.removeprefix(prefix)
        if name == topic or _RESERVED_NAME.match(name):
            return None
        seen: set[str] = set()
        current: str | None = topic
        while current is not None and current not in seen:
            if current == self.main.topic:
                return name
            rest = current.removeprefix(prefix)
            if rest == current or _RESERVED_NAME.match(rest):
                return None  # an ancestor that is not the tenant's
            seen.add(current)
            try:
                current = self.log.topic(current).parent
            except TopicNotFoundError:
                return None
        return None

    def info(self, tenant: str, name: str) -> TopicInfo:
        """The topic of `tenant`'s existing branch; 404 BranchError if there is none."""
        topic = self.topic_of(tenant, name)
        try:
            info = self.log.topic(topic)
        except TopicNotFoundError:
            raise BranchError(404, "branch_not_found", f"no branch {name!r}") from None
        if self.name_of(tenant, topic) != name:
            raise BranchError(404, "branch_not_found", f"no branch {name!r} of {self.main.topic!r}")
        return info

    def describe(self, tenant: str, name: str) -> dict[str, Any]:
        """A branch as JSON: name, topic, parent branch, fork cut, and whether this node runs it."""
        info = self.info(tenant, name)
        parent = None if info.parent is None else self.name_of(tenant, info.parent)
        started = self._started.get(info.name) if name != MAIN else self.main
        return {
            "name": name,
            "topic": info.name,
            "parent": parent,
            "fork_cut": None if info.fork_cut is None else list(info.fork_cut),
            "fork_token": None if info.fork_cut is None else cut_token(info.fork_cut),
            "partitions": info.partitions,
            "started": started is not None,
            "applied": None if started is None else started.token(),
        }

    def names(self, tenant: str) -> list[str]:
        """Main, then every branch of `tenant` descending from main, by name."""
        found = sorted(
            name
            for info in self.log.topics()
            if (name := self.name_of(tenant, info.name)) is not None and name != MAIN
        )
        return [MAIN, *found]

    def children(self, tenant: str, name: str) -> list[str]:
        """The branches made from `tenant`'s branch `name`, by topic (another tenant's show by topic only)."""
        topic = self.info(tenant, name).name
        return sorted(
            self.name_of(tenant, info.name) or info.name for info in self.log.topics() if info.parent == topic
        )

    # ----------------------------------------------------------------------------------- lifecycle

    async def get(self, tenant: str, name: str) -> Branch:
        """`tenant`'s branch `name`, its engine started (rebuilt, then tailing) on first use; 404 if absent."""
        if name == MAIN:
            return self.main
        topic = self.topic_of(tenant, name)
        branch = self._started.get(topic)
        if branch is not None:
            return branch
        async with self._start_lock:
            branch = self._started.get(topic)
            if branch is not None:
                return branch
            if self._closed:
                raise BranchError(503, "stopping", "the node is stopping")
            topic = self.info(tenant, name).name
            state = await rebuild(self.log, topic, await self.log.end_offsets(topic), self.snapshot_dir)
            engine = Engine(self.log, topic, state)
            engine.start()
            branch = self._started[topic] = Branch(name, topic, engine, CommandProducer(self.log, topic))
            return branch

    async def create(self, tenant: str, name: str, parent: str, cut: Sequence[int]) -> dict[str, Any]:
        """Create `tenant`'s branch `name` of its branch `parent` at `cut` (zero-copy); 409 if it exists."""
        if name == MAIN:
            raise BranchError(409, "branch_exists", f"{MAIN!r} is the main branch")
        topic = self.topic_of(tenant, name)
        parent_topic = self.info(tenant, parent).name
        try:
            await self.log.create_branch(topic, parent_topic, list(cut))
        except TopicExistsError:
            raise BranchError(409, "branch_exists", f"branch {name!r} exists") from None
        except InvalidRequestError as error:
            raise BranchError(422, "invalid", str(error)) from error
        self._forget(topic)
        return self.describe(tenant, name)

    async def delete(self, tenant: str, name: str) -> None:
        """Stop and delete `tenant`'s branch `name` and its records; 409 while branches of it exist."""
        if name == MAIN:
            raise BranchError(400, "bad_branch", f"the main branch {MAIN!r} cannot be deleted")
        topic = self.info(tenant, name).name
        children = self.children(tenant, name)
        if children:
            raise BranchError(
                409, "branch_in_use", f"branch {name!r} has branches: {', '.join(children)}", children=children
            )
        branch = self._started.pop(topic, None)
        if branch is not None:
            await branch.engine.stop()
        self._forget(topic)
        try:
            await self.log.delete_topic(topic)
        except TopicInUseError as error:
            raise BranchError(409, "branch_in_use", str(error)) from error
        except TopicNotFoundError:
            raise BranchError(404, "branch_not_found", f"no branch {name!r}") from None

    async def close(self) -> None:
        """Stop every branch engine this node started (main is the node's to stop)."""
        async with self._start_lock:
            self._closed = True
            branches = list(self._started.values())
            self._started.clear()
        for branch in branches:
            await branch.engine.stop()
        self._as_of.clear()

    # ----------------------------------------------------------------------------------- time travel

    async def resolve_as_of(self, branch: Branch, text: str, wait_s: float = 0.0) -> AsOf:
        """The cut and reader's clock an `as_of` names on `branch`; 409 past what it has applied."""
        partitions = len(branch.engine.applied)
        parsed = parse_as_of(text, partitions)
        if isinstance(parsed, int):
            cut = await cut_at_time(self.log, branch.topic, parsed)
        else:
            cut = parsed
        if not branch.engine.reached(dict(enumerate(cut))):
            ends = await self.log.end_offsets(branch.topic)
            in_log = all(c <= e for c, e in zip(cut, ends, strict=True))
            if not (in_log and wait_s > 0 and await branch.engine.wait_for(dict(enumerate(cut)), wait_s)):
                raise BranchError(
                    409,
                    "as_of_not_applied",
                    f"as_of {text!r} is the cut {cut_token(cut)}, past what branch {branch.name!r} has applied "
                    f"({branch.token()}; log end {cut_token(ends)})",
                    applied=branch.token(),
                )
        clock_ms = parsed if isinstance(parsed, int) else await log_time_at(self.log, branch.topic, cut)
        return AsOf(tuple(cut), clock_ms)

    async def state_at(self, branch: Branch, cut: Sequence[int], tenant: str = DEFAULT_TENANT) -> EngineState:
        """The state of `branch` at exactly `cut` (at or below its applied cut): cached, copied or rebuilt.

        A cache miss counts against `tenant`'s `AS_OF_REBUILDS_PER_TENANT_MAX` while it waits and runs.
        """
        key = (branch.topic, tuple(cut))
        if not branch.engine.reached(dict(enumerate(key[1]))):
            raise BranchError(409, "as_of_not_applied", f"branch {branch.name!r} has not applied {cut_token(cut)}")
        cached = self._as_of.get(key)
        if cached is not None:
            self._as_of.move_to_end(key)
            return cached
        busy = self._rebuilds.get(tenant, 0)
        if busy >= AS_OF_REBUILDS_PER_TENANT_MAX:
            raise BranchError(
                429,
                "too_many_rebuilds",
                f"{busy} as_of/diff states are being made for this tenant (at most {AS_OF_REBUILDS_PER_TENANT_MAX} "
                "at once); retry later or read the live state",
                retry_after_s=REBUILD_RETRY_AFTER_S,
            )
        self._rebuilds[tenant] = busy + 1
        try:
            return await self._state_at(branch, key)
        finally:
            left = self._rebuilds[tenant] - 1
            if left:
                self._rebuilds[tenant] = left
            else:
                del self._rebuilds[tenant]

    async def _state_at(self, branch: Branch, key: tuple[str, tuple[int, ...]]) -> EngineState:
        async with self._rebuild_lock:
            state = self._as_of.get(key)
            if state is None:
                if list(key[1]) == branch.engine.applied:
                    state = pickle.loads(pickle.dumps(branch.state, protocol=pickle.HIGHEST_PROTOCOL))
                else:
                    try:
                        state = await rebuild(self.log, branch.topic, key[1], self.snapshot_dir)
                    except TimeTravelError as error:
                        raise BranchError(409, "as_of_not_applied", str(error)) from error
                self._as_of[key] = state
                while len(self._as_of) > AS_OF_STATES:
                    self._as_of.popitem(last=False)
            self._as_of.move_to_end(key)
            return state

    def _forget(self, topic: str) -> None:
        """Drop the scratch states of `topic` (deleted, or made anew)."""
        for key in [key for key in self._as_of if key[0] == topic]:
            del self._as_of[key]

    # ----------------------------------------------------------------------------------- runs

    async def cut_after_event(self, branch: Branch, tenant: str, run_id: str, seq: int) -> list[int]:
        """The cut just after event `seq` of run `run_id` on `branch` (other partitions: by its log time)."""
        runs = branch.state.model("runs")
        assert isinstance(runs, RunsModel)
        if runs.get_run(tenant, run_id) is None:
            raise BranchError(404, "not_found", f"no run {run_id!r} on branch {branch.name!r}")
        views = runs.events(tenant, run_id, from_seq=seq, limit=1)
        if not views or views[0].seq != seq:
            raise BranchError(404, "not_found", f"run {run_id!r} has no event {seq} on branch {branch.name!r}")
        event = views[0]
        partition = partition_for(scope_key(tenant, run_id), len(branch.engine.applied))
        offset = await find_command(self.log, branch.topic, partition, event.event_id, event.log_time_ms)
        if offset is None:
            raise BranchError(409, "not_found", f"event {seq} of run {run_id!r} is not in the log of {branch.name!r}")
        cut = await cut_at_time(self.log, branch.topic, event.log_time_ms)
        cut[partition] = offset + 1
        return cut
