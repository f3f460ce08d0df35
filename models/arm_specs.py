"""The arms of the backtest, declared once: each arm's name, kind and the :class:`RowSpec`
column groups it reads. The backtest (:mod:`models.evaluate`), the artifact
(``forecaster/artifact.py``) and the report (``forecaster/report/format.py``, which keeps
the Korean names keyed by these names) look an arm up here; nobody rebuilds one from a
string or finds it by a column prefix.

An arm runs on rows that hold every group it reads: the Pareto/NBD arms need the BTYD
columns, the empirical arms an LLM run (the empirical forecaster kept beside it), the
two bounds (the oracle and the bayes arm) synthetic data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from models.rows import RowSpec


class ArmKind(Enum):
    REFERENCE = "reference"  # reads no feature group: climatology, persistence
    ESTIMATOR = "estimator"  # one group's own forecast, scored as it is: Pareto/NBD, a forecaster
    XGB = "xgb"  # the hurdle XGBoost model fitted on its groups' columns
    # a synthetic-data reference bound, not a model a user could run on real data: the oracle
    # (perfect knowledge of each customer's parameters) and the bayes arm (what the data allow
    # under the generator's priors); test rows only, so no tuned threshold
    BOUND = "bound"


@dataclass(frozen=True)
class ArmSpec:
    name: str  # its key in predictions.parquet, metrics.json and the artifact
    kind: ArmKind
    groups: tuple[str, ...] = ()  # RowSpec groups it reads, in column order

    def runs_on(self, spec: RowSpec) -> bool:
        return all(spec.group(g) for g in self.groups)

    def columns(self, spec: RowSpec) -> list[str]:
        return [c for g in self.groups for c in spec.group(g)]


CLIMATOLOGY = ArmSpec("climatology", ArmKind.REFERENCE)
PERSISTENCE = ArmSpec("persistence", ArmKind.REFERENCE)
BTYD = ArmSpec("btyd", ArmKind.ESTIMATOR, ("btyd",))
FORECASTER = ArmSpec("forecaster", ArmKind.ESTIMATOR, ("forecaster",))
EMPIRICAL = ArmSpec("empirical", ArmKind.ESTIMATOR, ("empirical",))
XGB_BASE = ArmSpec("xgb_base", ArmKind.XGB, ("base",))
XGB_BTYD = ArmSpec("xgb_base+btyd", ArmKind.XGB, ("base", "btyd"))
XGB_FORECASTER = ArmSpec("xgb_base+forecaster", ArmKind.XGB, ("base", "forecaster"))
XGB_EMPIRICAL = ArmSpec("xgb_base+empirical", ArmKind.XGB, ("base", "empirical"))
ORACLE = ArmSpec("oracle", ArmKind.BOUND, ("oracle",))
BAYES = ArmSpec("bayes", ArmKind.BOUND, ("bayes",))

# every arm, in the order they run: the order of predictions.parquet and metrics.json
ARMS = (CLIMATOLOGY, PERSISTENCE, BTYD, FORECASTER, EMPIRICAL,
        XGB_BASE, XGB_BTYD, XGB_FORECASTER, XGB_EMPIRICAL, ORACLE, BAYES)
# each XGBoost arm with more groups than the baseline is compared with it
AUGMENTED_ARMS = tuple(a for a in ARMS if a.kind is ArmKind.XGB and a is not XGB_BASE)
# every arm's RPS and log loss are also given as a ratio to each bound's
BOUND_ARMS = tuple(a for a in ARMS if a.kind is ArmKind.BOUND)

# arm -> the columns it reads, for the arms a row frame can run (models.evaluate.arm_columns)
ArmPlan = dict[ArmSpec, list[str]]

