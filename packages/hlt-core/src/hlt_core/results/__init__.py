"""Results: what a run leaves behind and says: the export and its predictor, the
predictions table, results.json, plots and the terminal."""
