"""LightningDataModules for hlt (no Hydra, no models, no tasks)."""

from hlt_data.samplers import GaussianClusters, RegressionFunction
from hlt_data.simulated import Sampler, SimulatedDataModule

__all__ = ["GaussianClusters", "RegressionFunction", "Sampler", "SimulatedDataModule"]
