"""Parameter constraints of the filters: the project's one mechanism, in :mod:`entrosel.params`."""
from entrosel.params import Param, ParameterError, check_params, check_range, flag

__all__ = ["Param", "ParameterError", "check_params", "check_range", "flag"]
