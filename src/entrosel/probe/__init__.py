"""The data probe: a small causal LM trained from scratch on a set (the ``[lm]`` extra)."""
