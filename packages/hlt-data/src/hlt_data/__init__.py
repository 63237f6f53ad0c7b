"""LightningDataModules for hlt (no Hydra, no models, no tasks)."""

from hlt_data.columns import TableEncoder
from hlt_data.errors import DataConfigError
from hlt_data.files import FileDataModule
from hlt_data.from_path import (
    FastaDataModule,
    NpyDataModule,
    TableDataModule,
    prediction_reader,
)
from hlt_data.genome import GenomeDataModule
from hlt_data.getters import GlobFiles, ManifestFiles, PathFiles
from hlt_data.keys import BatchKeys
from hlt_data.loader import ResumableLoader
from hlt_data.readers import NpyReader, NpzReader, SequenceReader, Table, TableReader
from hlt_data.samplers import GaussianClusters, RegressionFunction
from hlt_data.sequences import AssociativeRecall, InductionHeads
from hlt_data.simulated import Sampler, SimulatedDataModule
from hlt_data.targets import LabelVocabulary, label_name
from hlt_data.tokenizers import CharTokenizer

__all__ = [
    "AssociativeRecall",
    "BatchKeys",
    "CharTokenizer",
    "DataConfigError",
    "FastaDataModule",
    "FileDataModule",
    "GaussianClusters",
    "GenomeDataModule",
    "GlobFiles",
    "InductionHeads",
    "LabelVocabulary",
    "ManifestFiles",
    "NpyDataModule",
    "NpyReader",
    "NpzReader",
    "PathFiles",
    "RegressionFunction",
    "ResumableLoader",
    "Sampler",
    "SequenceReader",
    "SimulatedDataModule",
    "Table",
    "TableDataModule",
    "TableEncoder",
    "TableReader",
    "label_name",
    "prediction_reader",
]
