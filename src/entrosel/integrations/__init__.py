"""entrosel inside the tools users already run (transformers, datatrove, Data-Juicer, HF datasets).

Each module here imports its tool only when used; each tool is an optional extra.
"""
