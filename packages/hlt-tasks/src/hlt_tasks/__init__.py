"""Tasks for hlt: decoder head class, loss, metrics and predictions (no Lightning)."""

from hlt_tasks.base import Task
from hlt_tasks.classification import ClassificationTask
from hlt_tasks.decoders import LinearDecoder, MLPDecoder, PooledDecoder, PositionDecoder
from hlt_tasks.ordinal import OrdinalRegressionTask
from hlt_tasks.outputs import OriginalUnits, Probabilities, Values
from hlt_tasks.regression import RegressionTask
from hlt_tasks.sequence import (
    IGNORE,
    AnswerLanguageModelTask,
    LanguageModelTask,
    TokenClassificationTask,
    TokenPerplexity,
)

__all__ = [
    "IGNORE",
    "AnswerLanguageModelTask",
    "ClassificationTask",
    "LanguageModelTask",
    "LinearDecoder",
    "MLPDecoder",
    "OrdinalRegressionTask",
    "OriginalUnits",
    "PooledDecoder",
    "PositionDecoder",
    "Probabilities",
    "RegressionTask",
    "Task",
    "TokenClassificationTask",
    "TokenPerplexity",
    "Values",
]
