"""Tasks for hlt: decoder head class, loss, metrics and predictions (no Lightning)."""

from hlt_tasks.base import Task
from hlt_tasks.classification import ClassificationTask
from hlt_tasks.decoders import LinearDecoder
from hlt_tasks.regression import RegressionTask

__all__ = ["ClassificationTask", "LinearDecoder", "RegressionTask", "Task"]
