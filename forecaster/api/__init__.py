"""The Python API behind ``import forecaster as fc`` (the command line's verbs call it):
:mod:`~forecaster.api.data` (loading, narratives), :mod:`~forecaster.api.evaluation`
(:func:`evaluate`) and :mod:`~forecaster.api.model` (:func:`train`, :class:`TrainedModel`)."""
