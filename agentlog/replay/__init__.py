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

from agentlog.replay.cassette import (
    Cassette,
    CassetteEntry,
    cassette_call,
    fetch_cassette,
    fetch_cassette_sync,
    step_id,
    step_of,
)
from agentlog.replay.diff import Divergence, RecordedError, ReplayDivergence
from agentlog.replay.harness import RecordedRun, ReplayReport, record_run, record_run_sync, replay_run, replay_run_sync
from agentlog.replay.recorder import Recorder, SyncRecorder

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
