"""Where work runs. Scorers and evaluators do not know which engine runs them."""
from entrosel.engines.local import EvaluatorGroup, default_workers, ordered_map, resolve_workers

__all__ = ["EvaluatorGroup", "default_workers", "ordered_map", "resolve_workers"]
