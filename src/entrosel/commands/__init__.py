"""What the command line does, as library functions taking paths (same names, same defaults)."""
