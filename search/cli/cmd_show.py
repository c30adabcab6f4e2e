"""``search-cli show STUDY``: print a saved front (by study name, results directory or front.json)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="print the saved front of a search",
                              description="Print the Pareto front a search saved (devicefit-results/STUDY/front.json).")
    p.add_argument("study", metavar="STUDY", help="study name, its results directory, or a front.json path")
    p.add_argument("--json", action="store_true", help="print the saved front.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.cli.front_table import front_table
    from search.results import load_front

    data = load_front(args.study)
    if args.json:
        print(json.dumps(data))
        return 0
    spec = data.get("spec", {})
    budget = ", ".join(f"{k} {v}" for k, v in spec.get("budget", {}).items() if v) or "none"
    metric = (data.get("metric") or [None])[0]
    print(f"study {data.get('study')}: {spec.get('model')} on {spec.get('device')} ({spec.get('workload')}), "
          f"budget {budget}; {data.get('trials')} trials, {data.get('full_evaluations')} full evaluations")
    print(front_table(data.get("front", []), metric))
    print(f"from {data['results_path']}")
    return 0
