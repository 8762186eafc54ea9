"""The answers out of a labeling project: the long table, or a Label Studio JSON export that
``labelwise aggregate`` (and any tool that reads Label Studio) takes as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .._io import write_json, write_table
from ..errors import LabelwiseError

ANSWER_COLUMNS = ("sample_id", "worker", "label", "kind", "seconds", "created_at", "updated_at", "role", "excluded")


def export_answers(store: Any, target: str | Path) -> Path:
    """Write every answer (those of stopped annotators too, marked ``excluded``) to ``target``:
    ``.csv``/``.tsv``/``.parquet`` the long table, ``.json`` a Label Studio export."""
    target = Path(target)
    answers = store.answers(include_excluded=True)
    suffix = target.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        return write_table(target, answers.reindex(columns=list(ANSWER_COLUMNS)))
    if suffix == ".json":
        return write_json(target, label_studio_export(answers, store.task_table()))
    raise LabelwiseError(f"{target}: export to .csv, .tsv, .parquet (answers) or .json (Label Studio export)")


def label_studio_export(answers: pd.DataFrame, tasks: pd.DataFrame) -> list[dict[str, Any]]:
    """Label Studio's JSON export: one task per image with one annotation per answer; skipped and
    unsure answers are cancelled annotations, as Label Studio records a skip. Annotators are named
    by ``completed_by`` (a string: our names); a gold task carries its answer in ``data.gold_label``,
    never as an annotation (it would count as an annotator)."""
    by_task = {sid: group for sid, group in answers.groupby("sample_id", sort=False)}
    out: list[dict[str, Any]] = []
    for number, row in enumerate(tasks.itertuples(index=False), start=1):
        annotations = []
        for k, answer in enumerate(by_task.get(row.sample_id, pd.DataFrame()).itertuples(index=False), start=1):
            cancelled = answer.kind != "label"
            annotations.append(
                {
                    "id": number * 1000 + k,
                    "completed_by": answer.worker,
                    "was_cancelled": bool(cancelled),
                    "ground_truth": False,
                    "lead_time": None if pd.isna(answer.seconds) else float(answer.seconds),
                    "created_at": _iso(answer.created_at),
                    "updated_at": _iso(answer.updated_at),
                    "task": number,
                    "result": []
                    if cancelled
                    else [
                        {
                            "id": f"r{number}_{k}",
                            "from_name": "choice",
                            "to_name": "image",
                            "type": "choices",
                            "value": {"choices": [answer.label]},
                        }
                    ],
                    "meta": {"kind": answer.kind, "excluded": bool(answer.excluded)},
                }
            )
        out.append(
            {
                "id": number,
                "data": {"image": row.path, "sample_id": row.sample_id, "role": row.role}
                | ({} if _missing(row.gold_label) else {"gold_label": row.gold_label}),
                "annotations": annotations,
            }
        )
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _iso(at: float) -> str | None:
    if _missing(at):
        return None
    return pd.Timestamp(at, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")
