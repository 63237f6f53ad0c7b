"""A minimal Hydra app for the `sweep_plugins` nox session: the pinned sweeper and launcher
plugins must load and run on every supported Python (no torch needed)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> float:
    return float((cfg.x - 2) ** 2)


if __name__ == "__main__":
    main()
