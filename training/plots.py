"""Evaluation plots that compare several models or scores on one set of axes.

Every function builds its own ``matplotlib.figure.Figure`` on an Agg canvas
without pyplot, so it changes no global backend state and opens no window.
The matplotlib how-to FAQ ("Work with threads") says that separate figures on a
non-interactive backend such as Agg may be used from separate threads, and that
matplotlib is otherwise not thread-safe. ``save_png`` writes a figure to disk.

Slices that make a plot undefined (no rows, one class only, scores that are not
probabilities) do not raise. The plot skips that model and writes a note
below the axes instead. Rows whose label or score is NaN or infinite are dropped,
and the note gives their count.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from leadlink.training.evaluation import expected_calibration_error, lift_at_top

Curves = dict[str, tuple[np.ndarray, np.ndarray]]
"""Model or score name mapped to (labels 0/1, probabilities or scores)."""

PNG_DPI = 110
TOP_SHARE = 0.1
MAX_GAIN_POINTS = 1000
REFERENCE_STYLE = {"color": "grey", "linestyle": "--", "linewidth": 1}
MISSING_COLOUR = (0.6, 0.6, 0.6, 1.0)
SHAP_COLOURMAP = "coolwarm"
JITTER_HEIGHT = 0.4  # maximum offset from a feature's row, in row spacings
JITTER_BINS = 50
NOTE_WIDTH = 90  # characters per line of a note
NOTE_OFFSET_POINTS = 36  # clears the tick labels and the x-axis label


@dataclass
class _Slice:
    """Labels and scores of one model, without the rows that had a NaN or infinite value."""

    name: str
    labels: np.ndarray
    scores: np.ndarray
    n_dropped: int

    @property
    def has_both_classes(self) -> bool:
        return len(np.unique(self.labels)) == 2


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG file and close it so that it frees its memory.

    The parent folder is created if missing. The figure is cleared afterwards,
    so pass the returned path, not the figure, to later code.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write the PNG to {target} because it is a directory. Pass a file path.")

    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=PNG_DPI, bbox_inches="tight")

    # Figures built here are unknown to pyplot. One made with pyplot stays in
    # its registry, and so in memory, until pyplot closes it.
    if figure.canvas.manager is not None:
        from matplotlib import pyplot

        pyplot.close(figure)
    figure.clear()
    return target


def roc_figure(curves: Curves, title: str = "ROC curve") -> Figure:
    """Draw the ROC curve of each model, with its AUC in the legend and the random diagonal."""
    figure, ax = _new_figure()
    ax.plot([0, 1], [0, 1], label="random (AUC 0.500)", **REFERENCE_STYLE)

    notes = []
    for piece in _prepare_all(curves, notes):
        if not piece.has_both_classes:
            notes.append(f"{piece.name}: only one class in this slice, ROC undefined")
            continue
        false_positive_rate, true_positive_rate, _ = roc_curve(piece.labels, piece.scores)
        auc = roc_auc_score(piece.labels, piece.scores)
        ax.plot(false_positive_rate, true_positive_rate, label=f"{piece.name} (AUC {auc:.3f})")

    _set_unit_limits(ax)
    _finish_axes(ax, title, "false positive rate", "true positive rate", notes, legend_location="lower right")
    return figure


def precision_recall_figure(curves: Curves, title: str = "Precision-recall curve") -> Figure:
    """Draw the precision-recall curve of each model, with its average precision and base rate."""
    figure, ax = _new_figure()

    notes = []
    base_rates = {}
    for piece in _prepare_all(curves, notes):
        if not piece.has_both_classes:
            notes.append(f"{piece.name}: only one class in this slice, precision-recall undefined")
            continue
        precision, recall, _ = precision_recall_curve(piece.labels, piece.scores)
        average_precision = average_precision_score(piece.labels, piece.scores)
        # Steps match the sum that defines average precision.
        line = ax.plot(
            recall, precision, drawstyle="steps-post", label=f"{piece.name} (AP {average_precision:.3f})"
        )[0]
        base_rates[piece.name] = (float(piece.labels.mean()), line.get_color())

    _draw_base_rates(ax, base_rates)
    _set_unit_limits(ax)
    _finish_axes(ax, title, "recall", "precision", notes, legend_location="upper right")
    return figure


def calibration_figure(curves: Curves, n_bins: int = 10, title: str = "Calibration") -> Figure:
    """Draw a reliability diagram over a histogram of the predicted probabilities.

    Bins are ``n_bins`` equal-width intervals of [0, 1], assigned as in
    ``evaluation.expected_calibration_error``, whose value the legend shows.
    The upper axes plot mean predicted against observed rate per non-empty bin.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")

    figure = Figure(figsize=(6, 7), layout="constrained")
    FigureCanvasAgg(figure)
    reliability_ax, histogram_ax = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    reliability_ax.plot([0, 1], [0, 1], label="perfectly calibrated", **REFERENCE_STYLE)
    edges = np.linspace(0, 1, n_bins + 1)

    notes = []
    for piece in _prepare_all(curves, notes):
        if piece.scores.min() < 0 or piece.scores.max() > 1:
            notes.append(f"{piece.name}: scores outside [0, 1] are not probabilities, calibration undefined")
            continue
        mean_predicted, observed, counts = calibration_bins(piece.labels, piece.scores, n_bins)
        ece = expected_calibration_error(piece.labels, piece.scores, n_bins)
        non_empty = counts > 0
        line = reliability_ax.plot(
            mean_predicted[non_empty], observed[non_empty], marker="o", label=f"{piece.name} (ECE {ece:.3f})"
        )[0]
        histogram_ax.stairs(counts, edges, color=line.get_color(), label=piece.name)

    _set_unit_limits(reliability_ax)
    _finish_axes(reliability_ax, title, "", "observed conversion rate", [], legend_location="upper left")
    _finish_axes(histogram_ax, "", "predicted probability", "predictions", notes, legend_location=None)
    return figure


def calibration_bins(
    labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the mean prediction, observed rate and count of each equal-width bin.

    Empty bins get NaN means and a count of 0. Bin assignment matches
    ``evaluation.expected_calibration_error``: 1.0 falls in the last bin.
    """
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    bins = np.minimum((probabilities * n_bins).astype(int), n_bins - 1)

    counts = np.bincount(bins, minlength=n_bins).astype(float)
    prediction_sums = np.bincount(bins, weights=probabilities, minlength=n_bins)
    label_sums = np.bincount(bins, weights=labels, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return prediction_sums / counts, label_sums / counts, counts.astype(int)


def lift_figure(curves: Curves, title: str = "Cumulative gain") -> Figure:
    """Draw the cumulative gain chart of each model, with its top-decile lift in the legend.

    Leads are contacted in order of decreasing score. Ties keep their input
    order, as in ``evaluation.lift_at_top``.
    """
    figure, ax = _new_figure()
    ax.plot([0, 1], [0, 1], label="random", **REFERENCE_STYLE)

    notes = []
    for piece in _prepare_all(curves, notes):
        if piece.labels.sum() == 0:
            notes.append(f"{piece.name}: no conversions in this slice, gain undefined")
            continue
        contacted, captured = gain_curve(piece.labels, piece.scores)
        lift = lift_at_top(piece.labels, piece.scores, TOP_SHARE)
        ax.plot(contacted, captured, label=f"{piece.name} (top-decile lift {lift:.2f})")

    _set_unit_limits(ax)
    _finish_axes(ax, title, "share of leads contacted", "share of conversions captured", notes, "lower right")
    return figure


def gain_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the share of leads contacted and the share of conversions captured.

    The curve starts at (0, 0) and ends at (1, 1). Above ``MAX_GAIN_POINTS``
    leads it keeps about that many evenly spaced points, each still exact.
    """
    labels = np.asarray(labels, dtype=float)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(labels[order])]) / labels.sum()
    contacted = np.arange(len(labels) + 1) / len(labels)

    if len(labels) > MAX_GAIN_POINTS:
        kept = np.unique(np.linspace(0, len(labels), MAX_GAIN_POINTS + 1).round().astype(int))
        return contacted[kept], captured[kept]
    return contacted, captured


def importance_figure(importance: pd.Series, top: int = 20, title: str = "Feature importance") -> Figure:
    """Draw the ``top`` largest importances as horizontal bars, the largest on top.

    The Series index contains the feature display names. NaN values are left out.
    """
    values = importance.dropna().sort_values(ascending=False, kind="stable").head(top)
    figure, ax = _new_figure(figsize=(7, max(2.5, 0.3 * len(values) + 1.2)))

    notes = []
    if values.empty:
        notes.append("no feature importances to plot")
    else:
        positions = np.arange(len(values))[::-1]
        ax.barh(positions, values.to_numpy(dtype=float))
        ax.set_yticks(positions, labels=[str(name) for name in values.index])

    _finish_axes(ax, title, str(importance.name or "importance"), "", notes, legend_location=None)
    return figure


def shap_summary_figure(
    contributions: np.ndarray,
    feature_values: pd.DataFrame,
    top: int = 15,
    max_points: int = 5000,
    seed: int = 0,
    title: str = "SHAP summary",
) -> Figure:
    """Draw a SHAP beeswarm summary of the ``top`` features by mean absolute SHAP value.

    ``contributions`` is LightGBM's ``pred_contrib`` output without its last
    (bias) column, in log-odds, with one column per column of
    ``feature_values``. Each feature gets one row of jittered points. Numeric
    features are coloured by the rank of their value from blue (low) to red
    (high). Categorical features and missing values are grey. Above
    ``max_points`` rows a random sample drawn with ``seed`` is plotted, but the
    feature order always uses every row.
    """
    contributions = _validate_contributions(contributions, feature_values)
    order = np.argsort(-_mean_absolute(contributions), kind="stable")[:top]
    figure, ax = _new_figure(figsize=(7, max(2.5, 0.4 * len(order) + 1.5)))

    if contributions.size == 0:
        _finish_axes(ax, title, "SHAP value (log-odds)", "", ["no SHAP values to plot"], None)
        return figure

    rng = np.random.default_rng(seed)
    rows = _sample_rows(len(contributions), max_points, rng)
    colourmap = matplotlib.colormaps[SHAP_COLOURMAP]
    positions = np.arange(len(order))[::-1]
    for position, column in zip(positions, order):
        values = contributions[rows, column]
        colours = _value_colours(feature_values.iloc[rows, column], colourmap)
        finite = np.isfinite(values)
        y = position + _density_jitter(values[finite], rng)
        ax.scatter(values[finite], y, c=colours[finite], s=8, linewidths=0, rasterized=True)

    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, labels=[str(feature_values.columns[column]) for column in order])
    colourbar = figure.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=colourmap), ax=ax, ticks=[0, 1])
    colourbar.ax.set_yticklabels(["low", "high"])
    colourbar.set_label("feature value (rank)")
    _finish_axes(ax, title, "SHAP value (impact on log-odds of conversion)", "", [], None)
    return figure


def metrics_by_fold_figure(fold_metrics: pd.DataFrame, metric: str = "roc_auc", title: str | None = None) -> Figure:
    """Draw ``metric`` over the folds of a backtest, one line per model.

    ``fold_metrics`` needs the columns model, fold, cutoff and ``metric``, with
    at most one row per model and fold. The legend shows each model's mean.
    """
    _validate_fold_metrics(fold_metrics, metric)
    figure, ax = _new_figure(figsize=(7, 4.5))

    notes = []
    if fold_metrics.empty:
        notes.append("no folds to plot")
    for model in pd.unique(fold_metrics["model"]):
        rows = fold_metrics[fold_metrics["model"] == model].sort_values("fold")
        values = rows[metric].to_numpy(dtype=float)
        label = str(model)
        if np.isfinite(values).any():
            label = f"{model} (mean {np.nanmean(values):.3f})"
        ax.plot(rows["fold"].to_numpy(), values, marker="o", label=label)

    folds = fold_metrics.drop_duplicates("fold").sort_values("fold")
    ticks = [f"{fold}\n{_format_cutoff(cutoff)}" for fold, cutoff in zip(folds["fold"], folds["cutoff"])]
    ax.set_xticks(folds["fold"].to_numpy(), labels=ticks)
    _finish_axes(ax, title or f"{metric} by fold", "fold and cutoff", metric, notes, legend_location="best")
    return figure


def _new_figure(figsize: tuple[float, float] = (6, 5)) -> tuple[Figure, Axes]:
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _prepare_all(curves: Curves, notes: list[str]) -> list[_Slice]:
    """Clean every curve, and add a note for each empty slice and each one that lost rows."""
    if not curves:
        notes.append("no models to plot")

    pieces = []
    for name, (labels, scores) in curves.items():
        piece = _prepare(str(name), labels, scores)
        if piece.n_dropped:
            notes.append(f"{piece.name}: {piece.n_dropped:,} rows with a NaN or infinite label or score left out")
        if len(piece.labels) == 0:
            notes.append(f"{piece.name}: no rows to plot")
            continue
        pieces.append(piece)
    return pieces


def _prepare(name: str, labels, scores) -> _Slice:
    """Convert labels and scores to flat arrays and drop rows with a non-finite value.

    Raises ValueError when the lengths differ or a label is not 0 or 1.
    """
    labels = np.asarray(labels, dtype=float).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{name!r} has {len(labels)} labels but {len(scores)} scores. Pass one score per label.")

    finite = np.isfinite(labels) & np.isfinite(scores)
    labels, scores = labels[finite], scores[finite]
    invalid = np.setdiff1d(labels, [0.0, 1.0])
    if invalid.size:
        raise ValueError(f"labels of {name!r} must be 0 or 1, found {invalid[:5].tolist()}")
    return _Slice(name, labels.astype(int), scores, int((~finite).sum()))


def _draw_base_rates(ax: Axes, base_rates: dict[str, tuple[float, str]]) -> None:
    """Draw one base-rate line if all models share a base rate, else one line per model."""
    rates = [rate for rate, _ in base_rates.values()]
    if rates and np.allclose(rates, rates[0], rtol=0, atol=1e-12):
        ax.axhline(rates[0], label=f"base rate {rates[0]:.3f}", **REFERENCE_STYLE)
        return

    for name, (rate, colour) in base_rates.items():
        ax.axhline(rate, color=colour, linestyle=":", linewidth=1, label=f"{name} base rate {rate:.3f}")


def _finish_axes(
    ax: Axes, title: str, xlabel: str, ylabel: str, notes: list[str], legend_location: str | None
) -> None:
    """Set the title and axis labels, add the legend and write the notes under the axes."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend_location is not None and ax.get_legend_handles_labels()[0]:
        ax.legend(loc=legend_location, fontsize="small")
    _write_notes(ax, notes)


def _write_notes(ax: Axes, notes: list[str]) -> None:
    """Write the notes as a text of ``ax`` placed below its x-axis label.

    Below the plot the notes cannot hide a curve or the legend, and
    constrained layout makes room for them.
    """
    if not notes:
        return

    lines = [textwrap.fill(note, NOTE_WIDTH, subsequent_indent="  ") for note in notes]
    ax.annotate(
        "\n".join(lines),
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(0, -NOTE_OFFSET_POINTS),
        textcoords="offset points",
        verticalalignment="top",
        fontsize="small",
        color="dimgrey",
    )


def _set_unit_limits(ax: Axes) -> None:
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)


def _validate_contributions(contributions, feature_values: pd.DataFrame) -> np.ndarray:
    contributions = np.asarray(contributions, dtype=float)
    if contributions.ndim != 2:
        raise ValueError(f"contributions must be a 2-D array (rows, features), got shape {contributions.shape}")

    n_rows, n_features = feature_values.shape
    if contributions.shape[1] == n_features + 1:
        raise ValueError(
            f"contributions has {n_features + 1} columns for {n_features} features. "
            "Drop the last column of LightGBM's pred_contrib output, which is the bias."
        )
    if contributions.shape != (n_rows, n_features):
        raise ValueError(
            f"contributions has shape {contributions.shape} but feature_values has shape {(n_rows, n_features)}. "
            "Pass one row and one column of SHAP values per feature value."
        )
    return contributions


def _mean_absolute(contributions: np.ndarray) -> np.ndarray:
    """Compute the mean absolute SHAP value per column over its finite entries (0 if none)."""
    finite = np.isfinite(contributions)
    totals = np.where(finite, np.abs(contributions), 0.0).sum(axis=0)
    return totals / np.maximum(finite.sum(axis=0), 1)


def _sample_rows(n_rows: int, max_points: int, rng: np.random.Generator) -> np.ndarray:
    if n_rows <= max_points:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=max_points, replace=False))


def _value_colours(values: pd.Series, colourmap) -> np.ndarray:
    """Map numeric values to the colourmap by rank, and other or missing values to grey."""
    colours = np.tile(MISSING_COLOUR, (len(values), 1))
    if not pd.api.types.is_numeric_dtype(values):
        return colours

    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    present = numbers.notna().to_numpy()
    count = int(present.sum())
    if count == 0:
        return colours

    # Ranks, not raw values, so that a few outliers do not wash out the colours.
    ranks = numbers[present].rank(method="average").to_numpy()
    scaled = (ranks - 1) / (count - 1) if count > 1 else np.full(count, 0.5)
    colours[present] = colourmap(scaled)
    return colours


def _density_jitter(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return vertical offsets that spread points more where more of them share an x range."""
    if values.size == 0:
        return values

    counts, edges = np.histogram(values, bins=JITTER_BINS)
    bin_of_value = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, JITTER_BINS - 1)
    density = counts[bin_of_value] / counts.max()
    return rng.uniform(-JITTER_HEIGHT, JITTER_HEIGHT, size=values.size) * density


def _validate_fold_metrics(fold_metrics: pd.DataFrame, metric: str) -> None:
    missing = [column for column in ("model", "fold", "cutoff") if column not in fold_metrics.columns]
    if missing:
        raise ValueError(f"fold_metrics is missing the columns {missing}. It needs model, fold, cutoff and metric columns.")

    if metric not in fold_metrics.columns:
        available = [column for column in fold_metrics.columns if column not in ("model", "fold", "cutoff")]
        raise ValueError(f"metric {metric!r} is not a column of fold_metrics. Available metrics: {available}")

    duplicated = fold_metrics.duplicated(["model", "fold"])
    if duplicated.any():
        first = fold_metrics[duplicated].iloc[0]
        raise ValueError(f"fold_metrics has more than one row for model {first['model']!r} fold {first['fold']!r}")


def _format_cutoff(cutoff) -> str:
    """Format a cutoff as a date, with the time only when it is not midnight."""
    if isinstance(cutoff, (pd.Timestamp, dt.datetime, dt.date, np.datetime64)):
        moment = pd.Timestamp(cutoff)
        if moment.normalize() == moment:
            return moment.strftime("%Y-%m-%d")
        return moment.strftime("%Y-%m-%d %H:%M")
    return str(cutoff)
