"""The thin Hydra app of hlt."""
