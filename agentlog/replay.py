"""Record an agent's run, then replay the agent against its own recording: no tool or model is called again.

    async def agent(rec: Recorder) -> str:
        hits = await rec.tool_call("search", {"q": "flights to Lisbon"}, search)
        answer = await rec.model_call("gpt-4o", [{"role": "user", "content": str(hits)}], llm)
        await rec.event("decision", {"choice": answer})
        await rec.put("plans", "trip", {"choice": answer})
        return answer

    run = await record_run(client, agent, name="trip")      # live: calls search and llm, logs every step
    report = await replay_run(client, run.run_id, agent)    # offline: serves their recorded outputs
    assert report.ok, report                                 # or: the first command that differs, with a diff

**Cassette.** Every command the recorder issues is one *step*, numbered from 1 in issue order, and
its `command_id` is `step_id(run_id, step)` (`<run_id>:rec:<step>`), so a run's steps sort in
issue order even though kv writes land on other partitions than the run's events, and a retried
step is applied once. `GET /v1/runs/{run_id}/replay` answers every command of the run in log order;
`Cassette.from_json` keeps the recorder's steps (by step number) and counts the rest (`run.begin`,
writes made without the recorder) as `other`, which replay does not compare.

Steps and the commands they log:

- `tool_call(name, args, fn)`: calls `fn(args)`, then one `trace.record` of kind `tool_call` with
  data `{"name", "args", "output"}` (or `"error": {"type", "message"}` if `fn` raised; replay
  raises `RecordedError`).
- `model_call(model, input, fn)`: a `model_input` trace `{"model", "input"}` *before* calling
  `fn(input)`, then a `model_output` trace `{"model", "output"}` (or `error`) whose parent is the input.
- `event(type, payload)`: an `event.append` to the run's hash chain. `put(namespace, key, value)`:
  a `kv.put` attached to the run. `trace(kind, data)`: any other typed trace (decision, citation...).

Outputs and args must be JSON; both modes hand the agent the JSON round trip of an output, so the
agent sees the same values live and replayed. In replay mode nothing is written: each step is
compared with the recorded one (command type, namespace and the whole command, trace ids
included), a write answers its recorded result (or raises its recorded rejection), and the first
difference stops the agent (`ReplayDivergence`) and is reported with a unified diff of the two
commands as canonical pretty JSON. `ReplayReport.ok` means the agent issued exactly the recorded
steps, in order, and returned normally.

`Recorder` and `record_run`/`replay_run` are async (fn may be sync or async); `SyncRecorder`,
`record_run_sync` and `replay_run_sync` are the same for synchronous agents and `AgentlogClient`.
Every one takes `branch=` to record or replay a run on a branch (default main).
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import orjson

from agentlog import _calls as calls
from agentlog._calls import Call, segment
from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient
from agentlog.errors import AgentlogError, error_from_problem
from agentlog.models import WriteResult
from commands import EventAppend, KvPut, TraceRecord
from commands.fields import CommandModel
from commands.limits import MAX_ID_BYTES

__all__ = [
    "Cassette",
    "CassetteEntry",
    "Divergence",
    "RecordedError",
    "RecordedRun",
    "Recorder",
    "ReplayDivergence",
    "ReplayReport",
    "SyncRecorder",
    "cassette_call",
    "fetch_cassette",
    "fetch_cassette_sync",
    "record_run",
    "record_run_sync",
    "replay_run",
    "replay_run_sync",
    "step_id",
    "step_of",
]

T = TypeVar("T")
Mode = Literal["record", "replay"]
#: The marker between a run id and a step number in a recorder's command ids.
STEP_MARKER: Final = ":rec:"
#: Most cassette items fetched for one replay.
CASSETTE_LIMIT: Final = 100_000
_STEP_DIGITS_MAX: Final = 12


# -- step ids -------------------------------------------------------------------------------------


def _step_base(run_id: str) -> str:
    """The run part of a step id: the run id, or a hash of it when the id would not fit."""
    if len(run_id.encode()) + len(STEP_MARKER) + _STEP_DIGITS_MAX <= MAX_ID_BYTES:
        return run_id
    return hashlib.sha256(run_id.encode()).hexdigest()[:40]


def step_id(run_id: str, step: int) -> str:
    """The command id (and trace id) of step `step` of the recorder of `run_id`."""
    return f"{_step_base(run_id)}{STEP_MARKER}{step}"


def step_of(run_id: str, command_id: str) -> int | None:
    """The step number a command id names for `run_id`, or None if a recorder of that run did not issue it."""
    prefix = _step_base(run_id) + STEP_MARKER
    if not command_id.startswith(prefix):
        return None
    digits = command_id[len(prefix) :]
    return int(digits) if digits.isdigit() and len(digits) <= _STEP_DIGITS_MAX and digits[0] != "0" else None


# -- cassettes and reports ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CassetteEntry:
    """One recorded step: the command as logged, where it sits, and its outcome."""

    seq: int
    type: str
    namespace: str | None
    command: dict[str, Any]
    command_id: str
    partition: int
    offset: int
    timestamp_ms: int
    event_seq: int | None
    outcome: dict[str, Any] | None

    def comparable(self) -> dict[str, Any]:
        """What replay compares: command type, namespace and the command."""
        return {"type": self.type, "namespace": self.namespace, "command": self.command}


@dataclass(frozen=True, slots=True)
class Cassette:
    """A run's recorded steps by step number; `other` counts the run's commands no recorder issued."""

    run_id: str
    entries: dict[int, CassetteEntry]
    other: int = 0
    truncated: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Cassette:
        """Parse `GET /v1/runs/{run_id}/replay`."""
        run_id = str(data["run_id"])
        entries: dict[int, CassetteEntry] = {}
        other = 0
        for item in data["items"]:
            step = step_of(run_id, item["command_id"])
            if item.get("retry"):
                continue
            if step is None or step in entries:
                other += 1
                continue
            entries[step] = CassetteEntry(
                step,
                item["type"],
                item.get("namespace"),
                item["command"],
                item["command_id"],
                item["partition"],
                item["offset"],
                item["timestamp_ms"],
                item.get("event_seq"),
                item.get("outcome"),
            )
        return cls(run_id, dict(sorted(entries.items())), other, bool(data.get("truncated")))

    @property
    def steps(self) -> int:
        """The highest recorded step (0 when none)."""
        return max(self.entries, default=0)


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step where the agent and its recording part: what was recorded, what the agent issued, a diff."""

    seq: int
    kind: Literal["mismatch", "extra", "missing"]
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    diff: str
    position: tuple[int, int] | None = None
    event_seq: int | None = None

    @property
    def command_type(self) -> str | None:
        """The command type the recording has at this step (else the agent's)."""
        side = self.expected or self.actual
        return None if side is None else str(side["type"])

    def __str__(self) -> str:
        what = {
            "mismatch": "the agent issued a different command",
            "extra": "the agent issued a command the recording does not have",
            "missing": "the agent stopped before this recorded command",
        }[self.kind]
        where = f" (recorded at {self.position[0]}:{self.position[1]})" if self.position else ""
        return f"step {self.seq} [{self.command_type}]{where}: {what}\n{self.diff}".rstrip()


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying an agent against a run's recording."""

    run_id: str
    recorded: int
    replayed: int
    divergence: Divergence | None
    error: str | None = None
    result: Any = None

    @property
    def ok(self) -> bool:
        """True when the agent issued exactly the recorded steps and returned normally."""
        return self.divergence is None and self.error is None

    def __str__(self) -> str:
        head = f"replay of run {self.run_id}: {self.replayed}/{self.recorded} steps matched"
        if self.ok:
            return head + ", no divergence"
        lines = [head]
        if self.divergence is not None:
            lines.append(str(self.divergence))
        if self.error is not None:
            lines.append(f"the agent raised {self.error}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A recorded run: its id, how many steps were logged, what the agent returned."""

    run_id: str
    steps: int
    result: Any


class ReplayDivergence(Exception):
    """Raised into the agent at the first step that differs from the recording (it stops the replay)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(str(divergence))
        self.divergence = divergence


class RecordedError(Exception):
    """A tool or model call that failed while recording, raised again at the same step on replay."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message


def _pretty(value: Any) -> str:
    """Canonical pretty JSON (sorted keys, two-space indent) for diffs."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def _diff(step: int, expected: Any, actual: Any) -> str:
    """A unified diff of the recorded and the replayed command."""
    lines = difflib.unified_diff(
        _pretty(expected).splitlines() if expected is not None else [],
        _pretty(actual).splitlines() if actual is not None else [],
        fromfile=f"recorded step {step}",
        tofile=f"replayed step {step}",
        lineterm="",
    )
    return "\n".join(lines)


def _jsonable(value: Any, what: str) -> Any:
    """The JSON round trip of `value` (tuples become lists, dataclasses objects); TypeError if it is not JSON."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as error:
        raise TypeError(f"{what} must be JSON to be recorded: {error}") from None


# -- the recorder core (no I/O) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Invoke:
    """Effect: call the agent's function with one argument."""

    fn: Callable[[Any], Any]
    argument: Any


@dataclass(frozen=True, slots=True)
class _Send:
    """Effect: send a write call (record mode)."""

    call: Call[WriteResult]


_Effect = _Invoke | _Send
_Op = Generator[_Effect, Any, T]


def _comparable(command: CommandModel, namespace: str | None) -> dict[str, Any]:
    """The replay-comparable form of a command the agent issues (as the node would log it)."""
    dumped = command.model_dump(mode="json")
    return {"type": dumped["type"], "namespace": namespace, "command": dumped}


class _Core:
    """Step numbering, recording calls and replay comparison, shared by both recorders; effects are yielded."""

    def __init__(self, run_id: str, mode: Mode, cassette: Cassette | None, branch: str | None) -> None:
        if mode not in ("record", "replay"):
            raise ValueError(f"mode must be record or replay, not {mode!r}")
        if mode == "replay" and cassette is None:
            raise ValueError("replay mode needs the run's cassette (see fetch_cassette)")
        self.run_id = run_id
        self.branch = branch
        self.mode: Mode = mode
        self.cassette = cassette
        self.step = 0
        self.divergence: Divergence | None = None

    @property
    def replaying(self) -> bool:
        """True in replay mode."""
        return self.mode == "replay"

    def _next(self) -> int:
        """The next step number; ReplayDivergence once the replay has diverged."""
        if self.divergence is not None:
            raise ReplayDivergence(self.divergence)
        self.step += 1
        return self.step

    def _recorded(self, step: int) -> CassetteEntry | None:
        """The recorded entry of `step`, if any."""
        assert self.cassette is not None
        return self.cassette.entries.get(step)

    def _diverge(self, divergence: Divergence) -> ReplayDivergence:
        """Remember the first divergence; the exception that stops the agent."""
        self.divergence = divergence
        return ReplayDivergence(divergence)

    def _check(self, step: int, actual: dict[str, Any]) -> CassetteEntry:
        """The recorded entry of `step` if the agent's command equals it; else record the divergence and raise."""
        entry = self._recorded(step)
        if entry is None:
            raise self._diverge(Divergence(step, "extra", None, actual, _diff(step, None, actual)))
        expected = entry.comparable()
        if expected != actual:
            position = (entry.partition, entry.offset)
            diff = _diff(step, expected, actual)
            raise self._diverge(Divergence(step, "mismatch", expected, actual, diff, position, entry.event_seq))
        return entry

    def finish(self) -> Divergence | None:
        """The divergence of the replay, including recorded steps the agent never reached."""
        if self.divergence is None and self.replaying:
            assert self.cassette is not None
            missing = [step for step in self.cassette.entries if step > self.step]
            if missing:
                entry = self.cassette.entries[missing[0]]
                expected = entry.comparable()
                self.divergence = Divergence(
                    entry.seq,
                    "missing",
                    expected,
                    None,
                    _diff(entry.seq, expected, None),
                    (entry.partition, entry.offset),
                    entry.event_seq,
                )
        return self.divergence

    @staticmethod
    def _outcome(entry: CassetteEntry) -> dict[str, Any]:
        """The recorded result of a write, or its recorded rejection raised as the SDK would."""
        outcome = entry.outcome or {"status": "applied", "result": {}}
        if outcome.get("status") == "rejected":
            from query_api.http.problems import REJECTION_STATUS

            reason = str(outcome.get("reason") or "invalid")
            body = {
                "type": f"urn:agentlog:error:{reason}",
                "detail": outcome.get("detail") or reason,
                **(outcome.get("result") or {}),
            }
            raise error_from_problem(REJECTION_STATUS.get(reason, 409), body, "")
        result: dict[str, Any] = outcome.get("result") or {}
        return result

    # - trace-shaped steps -

    def _trace_command(self, step: int, kind: str, data: Any, parent: int | None) -> TraceRecord:
        """The trace.record of `step` (its trace id is the step id; `parent` a step number)."""
        parent_id = None if parent is None else step_id(self.run_id, parent)
        return TraceRecord(trace_id=step_id(self.run_id, step), kind=kind, data=data, parent_id=parent_id)  # type: ignore[arg-type]

    def _trace_call(self, command: TraceRecord) -> Call[WriteResult]:
        """The SDK call that records `command` (command id = trace id)."""
        return calls.record_trace(
            self.run_id,
            command.kind,
            command.data,
            trace_id=command.trace_id,
            parent_id=command.parent_id,
            command_id=command.trace_id,
            branch=self.branch,
        )

    def _call_step(
        self, kind: str, head: dict[str, Any], argument: Any, fn: Callable[[Any], Any], parent: int | None
    ) -> _Op[Any]:
        """Record or replay one call-shaped trace: `head` plus `output` (or `error`) of `fn(argument)`."""
        if self.replaying:
            step = self._next()
            entry = self._recorded(step)
            recorded = entry.command.get("data") if entry is not None else None
            recorded = recorded if isinstance(recorded, dict) else {}
            data = dict(head)
            if "error" in recorded:
                data["error"] = recorded["error"]
            else:
                data["output"] = recorded.get("output")
            self._check(step, _comparable(self._trace_command(step, kind, data, parent), None))
            if "error" in data:
                error = data["error"] if isinstance(data["error"], dict) else {}
                raise RecordedError(str(error.get("type", "Error")), str(error.get("message", "")))
            return data["output"]
        step = self._next()
        try:
            output = yield _Invoke(fn, argument)
        except Exception as error:
            failed = {**head, "error": {"type": type(error).__name__, "message": str(error)}}
            yield _Send(self._trace_call(self._trace_command(step, kind, failed, parent)))
            raise
        output = _jsonable(output, f"the output of {kind} {head}")
        yield _Send(self._trace_call(self._trace_command(step, kind, {**head, "output": output}, parent)))
        return output

    def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any]) -> _Op[Any]:
        """Effects of one tool call step."""
        head = {"name": name, "args": _jsonable(args, f"the args of tool {name!r}")}
        return self._call_step("tool_call", head, head["args"], fn, None)

    def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any]) -> _Op[Any]:
        """Effects of one model call: a model_input step, then a model_output step."""
        prompt = _jsonable(prompt, f"the input of model {model!r}")
        step = self._next()
        command = self._trace_command(step, "model_input", {"model": model, "input": prompt}, None)
        if self.replaying:
            self._check(step, _comparable(command, None))
        else:
            yield _Send(self._trace_call(command))
        return (yield from self._call_step("model_output", {"model": model}, prompt, fn, step))

    def trace(self, kind: str, data: Any, parent: int | None) -> _Op[str]:
        """Effects of one typed trace step (decision, citation, ...); answers its trace id."""
        step = self._next()
        command = self._trace_command(step, kind, _jsonable(data, f"the data of a {kind} trace"), parent)
        if self.replaying:
            self._check(step, _comparable(command, None))
        else:
            yield _Send(self._trace_call(command))
        return command.trace_id

    # - write steps -

    def _write_step(self, command: CommandModel, namespace: str | None, call: Call[WriteResult]) -> _Op[dict[str, Any]]:
        """Record a write (its result) or replay it (the recorded result or rejection)."""
        if self.replaying:
            entry = self._check(self.step, _comparable(command, namespace))
            return self._outcome(entry)
        written: WriteResult = yield _Send(call)
        return written.result

    def event(self, event_type: str, payload: Any, thread_id: str | None) -> _Op[dict[str, Any]]:
        """Effects of one event step; answers the write's result (`seq`, `event_id`, `hash`)."""
        step = self._next()
        payload = _jsonable(payload, f"the payload of event {event_type!r}")
        command = EventAppend(event_type=event_type, payload=payload, thread_id=thread_id)
        call = calls.append_event(
            self.run_id,
            event_type,
            payload,
            thread_id=thread_id,
            command_id=step_id(self.run_id, step),
            branch=self.branch,
        )
        return (yield from self._write_step(command, None, call))

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        metadata: Mapping[str, Any] | None,
        ttl_s: int | None,
        if_version: int | None,
    ) -> _Op[dict[str, Any]]:
        """Effects of one kv write step attached to the run; answers its result (`version`, ...)."""
        step = self._next()
        value = _jsonable(value, f"the value of {namespace}/{key}")
        meta = None if metadata is None else _jsonable(dict(metadata), "metadata")
        command = KvPut(key=key, value=value, metadata=meta, ttl_s=ttl_s, if_version=if_version)
        call = calls.kv_put(
            namespace,
            key,
            value,
            metadata=meta,
            ttl_s=ttl_s,
            if_version=if_version,
            command_id=step_id(self.run_id, step),
            run_id=self.run_id,
            branch=self.branch,
        )
        return (yield from self._write_step(command, namespace, call))


# -- recorders ------------------------------------------------------------------------------------


class _RecorderBase:
    """What both recorders share: the run, the mode and the step counter (in `_Core`)."""

    def __init__(
        self, run_id: str, mode: Mode, cassette: Cassette | None, branch: str | None, has_client: bool
    ) -> None:
        if mode == "record" and not has_client:
            raise ValueError("record mode needs a client")
        self._core = _Core(run_id, mode, cassette, branch)

    @property
    def run_id(self) -> str:
        """The run this recorder records or replays."""
        return self._core.run_id

    @property
    def mode(self) -> Mode:
        """`record` or `replay`."""
        return self._core.mode

    @property
    def steps(self) -> int:
        """Steps issued so far."""
        return self._core.step


class Recorder(_RecorderBase):
    """Async recorder of one run: record mode logs every step; replay mode serves them from the cassette."""

    def __init__(
        self,
        client: AsyncAgentlogClient | AgentlogClient | None,
        run_id: str,
        mode: Mode = "record",
        cassette: Cassette | None = None,
        *,
        branch: str | None = None,
    ) -> None:
        super().__init__(run_id, mode, cassette, branch, client is not None)
        self.client = client

    async def _send(self, call: Call[WriteResult]) -> WriteResult:
        """Send a write with the async client, or the sync one in a thread."""
        client = self.client
        if isinstance(client, AsyncAgentlogClient):
            return await client.run(call)
        assert client is not None
        return await asyncio.to_thread(client.run, call)

    async def _drive(self, op: _Op[T]) -> T:
        """Run an op's effects: await calls of `fn` (sync or async) and writes."""
        value: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = op.throw(failure) if failure is not None else op.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, failure = None, None
            try:
                if isinstance(effect, _Invoke):
                    value = effect.fn(effect.argument)
                    if inspect.isawaitable(value):
                        value = await value
                else:
                    value = await self._send(effect.call)
            except Exception as error:
                failure = error

    async def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any | Awaitable[Any]]) -> Any:
        """Call tool `fn(args)` and log it (record), or answer its recorded output without calling it (replay)."""
        return await self._drive(self._core.tool_call(name, args, fn))

    async def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any | Awaitable[Any]]) -> Any:
        """Log the model input, call `fn(prompt)`, log its output (record); or answer the recorded output (replay)."""
        return await self._drive(self._core.model_call(model, prompt, fn))

    async def event(self, event_type: str, payload: Any = None, *, thread_id: str | None = None) -> dict[str, Any]:
        """Append an event to the run's chain (record); answers the write's result (`seq`, `hash`)."""
        return await self._drive(self._core.event(event_type, payload, thread_id))

    async def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl_s: int | None = None,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Write a kv record attached to the run (`if_version`: only at that version); answers its result."""
        return await self._drive(self._core.put(namespace, key, value, metadata, ttl_s, if_version))

    async def trace(self, kind: str, data: Any = None, *, parent: int | None = None) -> str:
        """Record a typed trace (decision, citation, confidence, assumption); `parent` is a step number."""
        return await self._drive(self._core.trace(kind, data, parent))

    def finish(self) -> Divergence | None:
        """The replay's divergence (None in record mode or when the agent matched every recorded step)."""
        return self._core.finish()


class SyncRecorder(_RecorderBase):
    """Synchronous recorder of one run, for synchronous agents and `AgentlogClient` (same steps as `Recorder`)."""

    def __init__(
        self,
        client: AgentlogClient | None,
        run_id: str,
        mode: Mode = "record",
        cassette: Cassette | None = None,
        *,
        branch: str | None = None,
    ) -> None:
        super().__init__(run_id, mode, cassette, branch, client is not None)
        self.client = client

    def _drive(self, op: _Op[T]) -> T:
        """Run an op's effects: call `fn` and send writes, synchronously."""
        value: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = op.throw(failure) if failure is not None else op.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, failure = None, None
            try:
                if isinstance(effect, _Invoke):
                    value = effect.fn(effect.argument)
                    if inspect.isawaitable(value):
                        raise TypeError("SyncRecorder calls synchronous functions only; use Recorder")
                else:
                    assert self.client is not None
                    value = self.client.run(effect.call)
            except Exception as error:
                failure = error

    def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any]) -> Any:
        """Call tool `fn(args)` and log it (record), or answer its recorded output without calling it (replay)."""
        return self._drive(self._core.tool_call(name, args, fn))

    def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any]) -> Any:
        """Log the model input, call `fn(prompt)`, log its output (record); or answer the recorded output (replay)."""
        return self._drive(self._core.model_call(model, prompt, fn))

    def event(self, event_type: str, payload: Any = None, *, thread_id: str | None = None) -> dict[str, Any]:
        """Append an event to the run's chain (record); answers the write's result (`seq`, `hash`)."""
        return self._drive(self._core.event(event_type, payload, thread_id))

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl_s: int | None = None,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Write a kv record attached to the run (`if_version`: only at that version); answers its result."""
        return self._drive(self._core.put(namespace, key, value, metadata, ttl_s, if_version))

    def trace(self, kind: str, data: Any = None, *, parent: int | None = None) -> str:
        """Record a typed trace (decision, citation, confidence, assumption); `parent` is a step number."""
        return self._drive(self._core.trace(kind, data, parent))

    def finish(self) -> Divergence | None:
        """The replay's divergence (None in record mode or when the agent matched every recorded step)."""
        return self._core.finish()


# -- harness --------------------------------------------------------------------------------------


def cassette_call(run_id: str, *, branch: str | None = None, limit: int = CASSETTE_LIMIT) -> Call[Cassette]:
    """The SDK call of `GET /v1/runs/{run_id}/replay` (on `branch`, default main), parsed into a `Cassette`."""
    path = f"/v1/runs/{segment(run_id)}/replay"
    params = {"limit": limit, "branch": branch}
    return Call("GET", path, Cassette.from_json, params=params, read=True, branch=branch)


def _checked(cassette: Cassette) -> Cassette:
    """`cassette`, unless the node cut it short (then AgentlogError `too_large`)."""
    if cassette.truncated:
        raise AgentlogError(0, "too_large", f"run {cassette.run_id} has more than {CASSETTE_LIMIT} commands")
    return cassette


async def fetch_cassette(client: AsyncAgentlogClient, run_id: str, *, branch: str | None = None) -> Cassette:
    """The recorded steps of `run_id` (NotFoundError if there is no such run)."""
    return _checked(await client.run(cassette_call(run_id, branch=branch)))


def fetch_cassette_sync(client: AgentlogClient, run_id: str, *, branch: str | None = None) -> Cassette:
    """The recorded steps of `run_id`, synchronously."""
    return _checked(client.run(cassette_call(run_id, branch=branch)))


def _report(recorder: Recorder | SyncRecorder, cassette: Cassette, error: str | None, result: Any) -> ReplayReport:
    """The report of a finished replay."""
    divergence = recorder.finish()
    replayed = recorder.steps if divergence is None or divergence.kind == "missing" else divergence.seq - 1
    return ReplayReport(cassette.run_id, len(cassette.entries), replayed, divergence, error, result)


async def replay_run(
    client: AsyncAgentlogClient | None,
    run_id: str,
    agent: Callable[[Recorder], Awaitable[Any]],
    *,
    cassette: Cassette | None = None,
    branch: str | None = None,
) -> ReplayReport:
    """Run `agent` against the recording of `run_id` (no tool or model is called) and report the first divergence."""
    if cassette is None:
        if client is None:
            raise ValueError("give a client or a cassette")
        cassette = await fetch_cassette(client, run_id, branch=branch)
    recorder = Recorder(client, run_id, "replay", cassette, branch=branch)
    error: str | None = None
    result: Any = None
    try:
        result = await agent(recorder)
    except ReplayDivergence:
        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _report(recorder, cassette, error, result)


def replay_run_sync(
    client: AgentlogClient | None,
    run_id: str,
    agent: Callable[[SyncRecorder], Any],
    *,
    cassette: Cassette | None = None,
    branch: str | None = None,
) -> ReplayReport:
    """`replay_run` for a synchronous agent."""
    if cassette is None:
        if client is None:
            raise ValueError("give a client or a cassette")
        cassette = fetch_cassette_sync(client, run_id, branch=branch)
    recorder = SyncRecorder(client, run_id, "replay", cassette, branch=branch)
    error: str | None = None
    result: Any = None
    try:
        result = agent(recorder)
    except ReplayDivergence:
        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _report(recorder, cassette, error, result)


async def record_run(
    client: AsyncAgentlogClient,
    agent: Callable[[Recorder], Awaitable[Any]],
    *,
    run_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    branch: str | None = None,
) -> RecordedRun:
    """Begin a run, run `agent` live with a recording `Recorder`, end the run (failed if the agent raised)."""
    begun = await client.begin_run(run_id, name=name, metadata=metadata, branch=branch)
    recorder = Recorder(client, str(begun.result["run_id"]), "record", branch=branch)
    try:
        result = await agent(recorder)
    except BaseException as error:
        failure = {"error": f"{type(error).__name__}: {error}"}
        await client.end_run(recorder.run_id, "failed", result=failure, branch=branch)
        raise
    await client.end_run(recorder.run_id, "succeeded", branch=branch)
    return RecordedRun(recorder.run_id, recorder.steps, result)


def record_run_sync(
    client: AgentlogClient,
    agent: Callable[[SyncRecorder], Any],
    *,
    run_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    branch: str | None = None,
) -> RecordedRun:
    """`record_run` for a synchronous agent."""
    begun = client.begin_run(run_id, name=name, metadata=metadata, branch=branch)
    recorder = SyncRecorder(client, str(begun.result["run_id"]), "record", branch=branch)
    try:
        result = agent(recorder)
    except BaseException as error:
        client.end_run(recorder.run_id, "failed", result={"error": f"{type(error).__name__}: {error}"}, branch=branch)
        raise
    client.end_run(recorder.run_id, "succeeded", branch=branch)
    return RecordedRun(recorder.run_id, recorder.steps, result)
