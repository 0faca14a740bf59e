"""The read models a node runs, built fresh (for a rebuild) or restored from a snapshot."""

from __future__ import annotations

from projections.barriers import BarriersModel
from projections.engine import EngineState
from projections.hive import AgentsModel, ChannelsModel, ProposalsModel
from projections.memories import MemoriesModel
from projections.model import ReadModel
from projections.records import RecordsModel
from projections.runs import RunsModel
from projections.state import StateModel
from projections.tasks import TasksModel
from projections.traces import TracesModel
from projections.txn import TxnModel
from projections.vectors import VectorsModel

__all__ = ["build_models", "new_state"]


def build_models() -> list[ReadModel]:
    """One fresh instance of every read model, wired to each other where they must be."""
    records = RecordsModel()
    state = StateModel()
    runs = RunsModel()
    coordination: list[ReadModel] = [TasksModel(), ChannelsModel(), AgentsModel(), ProposalsModel()]
    return [
        records,
        state,
        TxnModel(records, state),
        runs,
        TracesModel(runs),
        VectorsModel(),
        BarriersModel(),
        MemoriesModel(),
        *coordination,
    ]


def new_state(partitions: int) -> EngineState:
    """An empty engine state over fresh models."""
    return EngineState(build_models(), partitions)
