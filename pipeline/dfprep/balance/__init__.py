"""The balanced training set (`dfprep balance`) and the visual check (`dfprep report`)."""

from dfprep.balance.report import ReportResult, run_report
from dfprep.balance.select import Selection, SplitPlan, select_crops
from dfprep.balance.stage import BalanceResult, run_balance

__all__ = [
    "BalanceResult",
    "ReportResult",
    "Selection",
    "SplitPlan",
    "run_balance",
    "run_report",
    "select_crops",
]
