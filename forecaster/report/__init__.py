"""The offline evaluation report (``forecaster evaluate``): numbers, Korean prose, tables and figures.

:mod:`forecaster.report.core` gathers the numbers into ``metrics.json`` and writes the folder;
:mod:`~forecaster.report.text`, :mod:`~forecaster.report.tables` and :mod:`~forecaster.report.plots`
render them, with names and number formats from :mod:`~forecaster.report.format` and verdicts and
warnings from :mod:`~forecaster.report.checks`. The templates are ``templates/*.j2`` (package data).
"""
