"""`forecaster explain`: one customer's forecast explained from evidence.

:mod:`forecaster.explain.core` gathers the evidence (forecast, models, TreeSHAP
contributions), :mod:`forecaster.explain.sentences` turns contributions into Korean
sentences and :mod:`forecaster.explain.render` lays them out for the terminal.
"""
