"""Data-Juicer's ``custom_operator_paths`` entry for entrosel: loading this file registers
entrosel's operators (see :mod:`entrosel.integrations.data_juicer`)."""
import entrosel.integrations.data_juicer  # noqa: F401  (registers the operators)
