"""Importers: models made elsewhere (TFLite, later scikit-learn) as mpml Graphs."""
