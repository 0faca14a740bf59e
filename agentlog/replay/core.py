"""The recorder core without I/O: step numbering, the commands steps log, replay comparison; effects are yielded."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson

from agentlog import _calls as calls
from agentlog._calls import Call
from agentlog.errors import error_from_problem
from agentlog.models import WriteResult
from agentlog.replay.cassette import Cassette, CassetteEntry, step_id
from agentlog.replay.diff import Divergence, RecordedError, ReplayDivergence, command_diff
from commands import EventAppend, KvPut, TraceRecord
from commands.fields import CommandModel

__all__ = ["Core", "Effect", "Invoke", "Mode", "Op", "Send"]

T = TypeVar("T")
Mode = Literal["record", "replay"]


def _jsonable(value: Any, what: str) -> Any:
    """The JSON round trip of `value` (tuples become lists, dataclasses objects); TypeError if it is not JSON."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as error:
        raise TypeError(f"{what} must be JSON to be recorded: {error}") from None


@dataclass(frozen=True, slots=True)
class Invoke:
    """Effect: call the agent's function with one argument."""

    fn: Callable[[Any], Any]
    argument: Any


@dataclass(frozen=True, slots=True)
class Send:
    """Effect: send a write call (record mode)."""

    call: Call[WriteResult]


Effect = Invoke | Send
Op = Generator[Effect, Any, T]


def _comparable(command: CommandModel, namespace: str | None) -> dict[str, Any]:
    """The replay-comparable form of a command the agent issues (as the node would log it)."""
    dumped = command.model_dump(mode="json")
    return {"type": dumped["type"], "namespace": namespace, "command": dumped}


class Core:
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
            raise self._diverge(Divergence(step, "extra", None, actual, command_diff(step, None, actual)))
        expected = entry.comparable()
        if expected != actual:
            position = (entry.partition, entry.offset)
            diff = command_diff(step, expected, actual)
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
                    command_diff(entry.seq, expected, None),
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
    ) -> Op[Any]:
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
            output = yield Invoke(fn, argument)
        except Exception as error:
            failed = {**head, "error": {"type": type(error).__name__, "message": str(error)}}
            yield Send(self._trace_call(self._trace_command(step, kind, failed, parent)))
            raise
        output = _jsonable(output, f"the output of {kind} {head}")
        yield Send(self._trace_call(self._trace_command(step, kind, {**head, "output": output}, parent)))
        return output

    def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any]) -> Op[Any]:
        """Effects of one tool call step."""
        head = {"name": name, "args": _jsonable(args, f"the args of tool {name!r}")}
        return self._call_step("tool_call", head, head["args"], fn, None)

    def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any]) -> Op[Any]:
        """Effects of one model call: a model_input step, then a model_output step."""
        prompt = _jsonable(prompt, f"the input of model {model!r}")
        step = self._next()
        command = self._trace_command(step, "model_input", {"model": model, "input": prompt}, None)
        if self.replaying:
            self._check(step, _comparable(command, None))
        else:
            yield Send(self._trace_call(command))
        return (yield from self._call_step("model_output", {"model": model}, prompt, fn, step))

    def trace(self, kind: str, data: Any, parent: int | None) -> Op[str]:
        """Effects of one typed trace step (decision, citation, ...); answers its trace id."""
        step = self._next()
        command = self._trace_command(step, kind, _jsonable(data, f"the data of a {kind} trace"), parent)
        if self.replaying:
            self._check(step, _comparable(command, None))
        else:
            yield Send(self._trace_call(command))
        return command.trace_id

    # - write steps -

    def _write_step(self, command: CommandModel, namespace: str | None, call: Call[WriteResult]) -> Op[dict[str, Any]]:
        """Record a write (its result) or replay it (the recorded result or rejection)."""
        if self.replaying:
            entry = self._check(self.step, _comparable(command, namespace))
            return self._outcome(entry)
        written: WriteResult = yield Send(call)
        return written.result

    def event(self, event_type: str, payload: Any, thread_id: str | None) -> Op[dict[str, Any]]:
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
    ) -> Op[dict[str, Any]]:
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
