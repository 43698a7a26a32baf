"""One fair benchmark of every loss of the collection (lesson 16).

Musgrave, Belongie and Lim (2020, "A Metric Learning Reality Check") showed that under one
protocol most published gains shrink to a few points. This package runs that protocol on
the collection's losses: :mod:`.setups` fixes the network, data, batches, optimiser,
lengths and seeds; :mod:`.recipes` holds every loss with the parameters its paper tunes;
:mod:`.runs` searches those on validation classes, then trains the chosen settings over
seeds; :mod:`.results` keeps every run in one file and summarises it over seeds.
Run it with ``python -m dmlnotes.benchmark`` (see :mod:`.cli`).
"""

from .recipes import RECIPES, BenchmarkRecipe, resolve_recipes
from .results import PUBLISHED_RESULTS, format_table, interval95, merge, read_results, summarize, write_results
from .runs import METRICS, Task, choose_settings, final_tasks, run_task, run_tasks, search_tasks, shard
from .setups import SETUPS, BenchmarkSetup, resolve_setup

__all__ = [
    "METRICS",
    "PUBLISHED_RESULTS",
    "RECIPES",
    "SETUPS",
    "BenchmarkRecipe",
    "BenchmarkSetup",
    "Task",
    "choose_settings",
    "final_tasks",
    "format_table",
    "interval95",
    "merge",
    "read_results",
    "resolve_recipes",
    "resolve_setup",
    "run_task",
    "run_tasks",
    "search_tasks",
    "shard",
    "summarize",
    "write_results",
]
