"""Which subset trains the better model? Train the same model on each, compare on held-out sets.

:class:`Evaluator` holds the options and runs a comparison; ``entrosel.commands.evaluate.evaluate``
is the one-call form the CLI uses. Torch and transformers are imported only when a run starts.
"""
from entrosel.evaluate.data import Choice, ChoiceSet, TextSet, read_eval_set, read_text_set
from entrosel.evaluate.runner import Evaluator

__all__ = ["Choice", "ChoiceSet", "Evaluator", "TextSet", "read_eval_set", "read_text_set"]
