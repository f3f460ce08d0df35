"""Every verb of the command line, each a module with ``register(app)``."""

from forecaster.verbs import batch, data, evaluate, explain, llm, narrate, train

VERB_MODULES = [data, narrate, train, batch, explain, evaluate, llm]
