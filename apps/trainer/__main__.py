"""`uv run apps/trainer [overrides]` runs this file."""

from hlt_trainer.app import main

if __name__ == "__main__":
    main()
