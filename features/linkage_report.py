"""An HTML page that explains a linkage run to a person.

It shows the match-weight histogram of the scored pairs, the model's
match weights and m/u parameters per comparison, and waterfall charts for a
sample of pairs near the threshold, where a reviewer's judgement matters
most. The charts are Splink's own; the page bundles the Vega libraries that
Splink ships, so it opens without a network connection.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import pandas as pd
from splink.internals.html_utils import load_chart_libraries

from leadlink.features.linkage import IdentityLinker

logger = logging.getLogger(__name__)

WATERFALL_SAMPLE = 10


def _chart_block(title: str, note: str, spec: dict, index: int) -> str:
    spec = dict(spec)
    spec.setdefault("config", {}).setdefault("view", {}).setdefault("continuousWidth", 500)
    return (
        f"<section><h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>"
        f'<div id="chart{index}"></div>'
        f"<script>vegaEmbed('#chart{index}', {json.dumps(spec, default=str)}, {{actions: false}});</script></section>"
    )


def write_linkage_report(
    path: str | Path,
    linker: IdentityLinker,
    contacts: pd.DataFrame,
    users: pd.DataFrame,
    threshold: float,
    summary: dict,
    person_ids: pd.Series | None = None,
) -> Path:
    """Write the report for prepared ``contacts`` and ``users`` to ``path``.

    ``remove_sensitive_data`` is set on the waterfall charts, so the page
    shows match weights per comparison but no names, emails or phones.
    """
    # Waterfall charts need the compared values and every partial weight.
    settings = {**linker.model_json_, "retain_matching_columns": True, "retain_intermediate_calculation_columns": True}
    splink_linker = linker._new_linker(contacts, users, settings, person_ids)
    predictions = splink_linker.inference.predict(threshold_match_probability=0.01, warning_mode="never")
    near = _pairs_near_threshold(predictions.as_pandas_dataframe(), threshold)

    blocks = [
        (
            "Match weights of scored pairs",
            "Pairs at or above probability 0.01. Two humps mean the model separates matches from non-matches well.",
            splink_linker.visualisations.match_weights_histogram(predictions).chart_dict,
        ),
        (
            "Match weight per comparison level",
            "How much each level of each comparison moves a pair towards or away from a match.",
            splink_linker.visualisations.match_weights_chart().chart_dict,
        ),
        (
            "m and u probabilities",
            "m: share of true matches at each level; u: share of non-matches.",
            splink_linker.visualisations.m_u_parameters_chart().chart_dict,
        ),
    ]
    if near:
        waterfall = splink_linker.visualisations.waterfall_chart(near, remove_sensitive_data=True)
        blocks.append(
            (
                f"Pairs near the threshold ({len(near)} of them)",
                f"Waterfall of match weights for pairs closest to probability {threshold}; use the chart's slider to step through them.",
                waterfall.chart_dict,
            )
        )

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_page(blocks, summary), encoding="utf-8")
    logger.info("Wrote the linkage report to %s", target)
    return target


def _pairs_near_threshold(pairs: pd.DataFrame, threshold: float) -> list[dict]:
    if pairs.empty:
        return []
    distance = (pairs["match_probability"] - threshold).abs()
    return pairs.loc[distance.nsmallest(WATERFALL_SAMPLE).index].to_dict("records")


def _page(blocks: list[tuple[str, str, dict]], summary: dict) -> str:
    libraries = load_chart_libraries()
    scripts = "".join(f"<script>{libraries[name]}</script>" for name in ("vega", "vega-lite", "vega-embed"))
    facts = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in summary.items())
    charts = "".join(_chart_block(title, note, spec, index) for index, (title, note, spec) in enumerate(blocks))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>leadlink linkage report</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "th{text-align:left;padding-right:1em}section{margin-top:2em}</style>"
        f"{scripts}</head><body><h1>Linkage report</h1><table>{facts}</table>{charts}</body></html>"
    )
