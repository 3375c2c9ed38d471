"""Reports: a typed report model (`model.py`, built by `data.py`) rendered by registered outputs (`outputs/`:
html, md, terminal, json); terminal tables after a run (`tables.py`); the export contract (`export.py`)."""
