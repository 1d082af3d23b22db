"""Fixed cell records for the report's golden tests (hand-written, not produced by a run)."""

from __future__ import annotations

from typing import Any

from benchmark.store import CellRecord


def cell_record(algo: str, seed: int, eval_n: int, score: float, **extra: Any) -> CellRecord:
    base = {
        "key": f"transfer-pursuit-n2-expert-{algo}-s{seed}@n{eval_n}",
        "status": "ok",
        "suite": "golden",
        "kind": "transfer",
        "env": "pursuit",
        "train_agents": (2,),
        "eval_agents": eval_n,
        "data": "expert",
        "algo": algo,
        "seed": seed,
        "normalized_score": score,
        "team_return_mean": score / 2,
        "team_return_std": 1.0,
        "returns": (score / 2 - 1, score / 2 + 1),
        "scores": (score - 2, score + 2),
        "n_updates": 100,
        "command": "marl-bench run --suite golden",
    }
    return CellRecord(**(base | extra))


def golden_records() -> list[CellRecord]:
    records = []
    # BC: 40, 50, 60 at n=2, losing 10 points per doubling; IQL: 70, 80, 90, losing 20.
    # gawi (communicating, as its record says): 55, 65, 75, losing 5; no communicating BC ran,
    # so it has no probability of improvement (classes are not compared with each other).
    for seed, (bc, iql) in enumerate([(40.0, 70.0), (50.0, 80.0), (60.0, 90.0)]):
        for step, n in enumerate((2, 4, 8)):
            records.append(cell_record("bc", seed, n, bc - 10 * step))
            records.append(cell_record("iql", seed, n, iql - 20 * step))
            records.append(
                cell_record("gawi", seed, n, bc + 15 - 5 * step, information="communicating")
            )
    records.append(
        cell_record(
            "sac",
            0,
            8,
            0.0,
            status="failed",
            error="ValueError: loss is NaN",
            normalized_score=None,
        )
    )
    for data, drop in (("expert", 0.0), ("expert+degenerate@50", 30.0)):
        for seed in range(2):
            for algo, score in (("bc", 60.0), ("iql", 80.0)):
                records.append(
                    cell_record(
                        algo,
                        seed,
                        4,
                        score - drop + seed,
                        key=f"degenerate-pursuit-n4-{data}-{algo}-s{seed}@n4",
                        kind="degenerate",
                        train_agents=(4,),
                        data=data,
                    )
                )
    return records
