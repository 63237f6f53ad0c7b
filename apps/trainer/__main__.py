"""`uv run apps/trainer [overrides]` runs this file."""

from hlt_trainer.app import main

if __name__ == "__main__":
    # Run as a folder, __spec__ is named "__main__", and Lightning's DDP launcher would
    # start the other ranks with `python -m __main__`, which fails; without a spec it
    # re-runs this path with the same arguments (and the same hydra.run.dir).
    __spec__ = None
    main()
