"""Evaluation: scoring a fitted model on test (``evaluate``), full-catalogue top-K
(``ranking``), metric functions (``metrics``) and nested tuning on validation (``tuning``)."""
