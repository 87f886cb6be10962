"""The mathematical core: forward processes, exact targets, score fields (exact, learned, guided),
and the name tables of targets and processes. Everything above builds on these objects."""
