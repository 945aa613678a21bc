"""The field's truth about a family's networks: NAS-Bench-201's architecture strings and
models/nb201.net both ways (nb201.py), and a benchmark's table of measured accuracies, keyed by
a family's choices (table.py). It imports nothing of search, ranking or training."""
