"""Composing: from a composed config to the pieces a run trains (the data and its facts,
a model started from trained weights, a length that trains at least one step)."""
