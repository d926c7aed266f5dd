"""Reading and writing data sets: JSONL, JSON arrays, CSV, Parquet, HF ``datasets`` folders."""
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import INPUT_FORMATS, detect_format, read_records
from entrosel.io.records import OnError, Record, Rejects, rejects_path
from entrosel.io.writers import output_format_for, write_records

__all__ = ["INPUT_FORMATS", "OnError", "Record", "Rejects", "atomic_path", "detect_format",
           "output_format_for", "read_records", "rejects_path", "write_records"]
