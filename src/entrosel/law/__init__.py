"""The entropy law's diagnostics: R (compression ratio) and L (first-epoch loss) of data versions."""
