"""Evaluation plots and the offline HTML comparison report, checked on small hand-made cases."""

from __future__ import annotations

import base64
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from sklearn.metrics import average_precision_score, roc_auc_score

from leadlink.training.plots import (
    calibration_figure,
    importance_figure,
    lift_figure,
    metrics_by_fold_figure,
    precision_recall_figure,
    roc_figure,
    save_png,
    shap_summary_figure,
)
from leadlink.training.report import write_comparison_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

LABELS = np.array([0, 0, 1, 1, 0, 1, 0, 1])
CHAMPION = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.55, 0.7])
CHALLENGER = np.array([0.5, 0.6, 0.4, 0.7, 0.3, 0.2, 0.1, 0.65])
CURVE_FUNCTIONS = [roc_figure, precision_recall_figure, calibration_figure, lift_figure]


def two_models() -> dict:
    return {"champion": (LABELS, CHAMPION), "challenger": (LABELS, CHALLENGER)}


def legend_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def line_labelled(ax, prefix: str):
    matches = [line for line in ax.lines if line.get_label().startswith(prefix)]
    assert len(matches) == 1
    return matches[0]


def all_texts(figure) -> str:
    """Join the text artists of every axes, which is where the plots write their notes."""
    return "\n".join(text.get_text() for ax in figure.axes for text in ax.texts)


def tick_labels_top_down(ax) -> list[str]:
    pairs = zip(ax.get_yticks(), (label.get_text() for label in ax.get_yticklabels()))
    return [label for _, label in sorted(pairs, key=lambda pair: -pair[0])]


# ROC and precision-recall


def test_roc_figure_uses_agg_canvas():
    figure = roc_figure(two_models())

    assert isinstance(figure.canvas, FigureCanvasAgg)


def test_roc_line_per_model_and_diagonal():
    ax = roc_figure(two_models()).axes[0]

    assert len(ax.lines) == 3
    assert len(legend_texts(ax)) == 3


def test_roc_legend_shows_auc():
    ax = roc_figure(two_models()).axes[0]
    texts = legend_texts(ax)

    champion_auc = roc_auc_score(LABELS, CHAMPION)
    challenger_auc = roc_auc_score(LABELS, CHALLENGER)
    assert f"champion (AUC {champion_auc:.3f})" in texts
    assert f"challenger (AUC {challenger_auc:.3f})" in texts


def test_roc_auc_by_hand():
    # 2 positives and 2 negatives: of the 4 pairs, 3 rank the positive higher.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.1])

    ax = roc_figure({"model": (labels, scores)}).axes[0]

    assert "model (AUC 0.750)" in legend_texts(ax)


def test_roc_diagonal_spans_unit_square():
    diagonal = line_labelled(roc_figure(two_models()).axes[0], "random")

    assert list(diagonal.get_xdata()) == [0, 1]
    assert list(diagonal.get_ydata()) == [0, 1]


def test_roc_ignores_nan_scores():
    scores = CHAMPION.copy()
    scores[[0, 3]] = np.nan
    kept = np.isfinite(scores)

    figure = roc_figure({"champion": (LABELS, scores)})

    expected_auc = roc_auc_score(LABELS[kept], scores[kept])
    assert f"champion (AUC {expected_auc:.3f})" in legend_texts(figure.axes[0])
    assert "2 rows with a NaN" in all_texts(figure)


def test_roc_unequal_lengths_raise():
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        roc_figure({"broken": (np.array([0, 1, 0]), np.array([0.1, 0.2]))})


def test_roc_label_outside_zero_one_raises():
    with pytest.raises(ValueError, match="must be 0 or 1"):
        roc_figure({"broken": (np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))})


def test_precision_recall_legend_shows_ap():
    ax = precision_recall_figure(two_models()).axes[0]
    texts = legend_texts(ax)

    champion_ap = average_precision_score(LABELS, CHAMPION)
    challenger_ap = average_precision_score(LABELS, CHALLENGER)
    assert f"champion (AP {champion_ap:.3f})" in texts
    assert f"challenger (AP {challenger_ap:.3f})" in texts


def test_precision_recall_shared_base_rate_line():
    ax = precision_recall_figure(two_models()).axes[0]

    # Two curves and one base-rate line, because both models score the same leads.
    assert len(ax.lines) == 3
    assert "base rate 0.500" in legend_texts(ax)
    assert list(line_labelled(ax, "base rate").get_ydata()) == [0.5, 0.5]


def test_precision_recall_base_rate_per_slice():
    curves = {"march": (np.array([1, 0, 0, 0]), np.array([0.9, 0.2, 0.3, 0.1])), "april": (LABELS, CHAMPION)}

    ax = precision_recall_figure(curves).axes[0]

    assert "march base rate 0.250" in legend_texts(ax)
    assert "april base rate 0.500" in legend_texts(ax)


# Calibration


def test_calibration_points_are_bin_means():
    labels = np.array([0, 0, 1, 1, 1, 0])
    probabilities = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])

    ax = calibration_figure({"model": (labels, probabilities)}, n_bins=2).axes[0]
    line = line_labelled(ax, "model")

    # Bin [0, 0.5): mean of 0.1, 0.2, 0.3 and 1 conversion in 3. Bin [0.5, 1]: 0.6, 0.7, 0.8 and 2 in 3.
    np.testing.assert_allclose(line.get_xdata(), [0.2, 0.7])
    np.testing.assert_allclose(line.get_ydata(), [1 / 3, 2 / 3])


def test_calibration_legend_shows_ece():
    labels = np.array([0, 0, 1, 1, 1, 0])
    probabilities = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])

    ax = calibration_figure({"model": (labels, probabilities)}, n_bins=2).axes[0]

    # (3 * |0.2 - 1/3| + 3 * |0.7 - 2/3|) / 6 = (0.4 + 0.1) / 6
    assert f"model (ECE {0.5 / 6:.3f})" in legend_texts(ax)


def test_calibration_histogram_counts():
    labels = np.array([0, 0, 1, 1, 1, 0, 1])
    probabilities = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 1.0])

    histogram_ax = calibration_figure({"model": (labels, probabilities)}, n_bins=2).axes[1]
    counts = histogram_ax.patches[0].get_data().values

    # A probability of exactly 1.0 belongs to the last bin.
    assert list(counts) == [3, 4]


def test_calibration_skips_empty_bins():
    labels = np.array([0, 1, 1])
    probabilities = np.array([0.05, 0.95, 0.91])

    line = line_labelled(calibration_figure({"model": (labels, probabilities)}).axes[0], "model")

    np.testing.assert_allclose(line.get_xdata(), [0.05, 0.93])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 1.0])


def test_calibration_skips_non_probabilities():
    curves = {"rules score": (LABELS, CHAMPION * 100), "champion": (LABELS, CHAMPION)}

    figure = calibration_figure(curves)

    assert len(figure.axes[0].lines) == 2
    assert "rules score: scores outside [0, 1]" in all_texts(figure)


def test_calibration_zero_bins_raise():
    with pytest.raises(ValueError, match="n_bins"):
        calibration_figure(two_models(), n_bins=0)


# Cumulative gain


def test_lift_gain_at_top_decile():
    # 20 leads and 5 conversions. The two highest scores are 0.99 (converted) and 0.95 (not).
    scores = np.array([0.5, 0.99, 0.2, 0.95, 0.3, 0.1, 0.8, 0.4, 0.6, 0.05,
                       0.7, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.9])
    labels = np.zeros(20, dtype=int)
    labels[[1, 2, 5, 9, 11]] = 1

    line = line_labelled(lift_figure({"model": (labels, scores)}).axes[0], "model")

    assert np.interp(0.1, line.get_xdata(), line.get_ydata()) == pytest.approx(1 / 5)


def test_lift_legend_shows_top_decile_lift():
    scores = np.arange(20, 0, -1) / 20
    labels = np.zeros(20, dtype=int)
    labels[[0, 7, 12, 15, 19]] = 1

    ax = lift_figure({"model": (labels, scores)}).axes[0]

    # The top 2 of 20 leads convert at 1/2, the whole slice at 5/20.
    assert "model (top-decile lift 2.00)" in legend_texts(ax)


def test_lift_line_per_model_and_random():
    ax = lift_figure(two_models()).axes[0]

    assert len(ax.lines) == 3
    assert len(legend_texts(ax)) == 3


def test_lift_large_slice_gain_at_decile():
    rng = np.random.default_rng(5)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores * 0.4).astype(int)
    top_500 = np.argsort(scores)[-500:]

    line = line_labelled(lift_figure({"model": (labels, scores)}).axes[0], "model")

    expected = labels[top_500].sum() / labels.sum()
    assert np.interp(0.1, line.get_xdata(), line.get_ydata()) == pytest.approx(expected)


def test_lift_curve_ends_at_one():
    line = line_labelled(lift_figure(two_models()).axes[0], "champion")

    assert line.get_xdata()[-1] == 1
    assert line.get_ydata()[-1] == 1


# Slices that leave a plot undefined


@pytest.mark.parametrize("plot", CURVE_FUNCTIONS, ids=lambda plot: plot.__name__)
def test_curves_one_class_does_not_raise(plot):
    figure = plot({"no conversions": (np.zeros(6, dtype=int), np.linspace(0.1, 0.6, 6))})

    assert len(figure.axes) >= 1


@pytest.mark.parametrize("plot", CURVE_FUNCTIONS, ids=lambda plot: plot.__name__)
def test_curves_empty_dict_writes_note(plot):
    figure = plot({})

    assert "no models to plot" in all_texts(figure)


@pytest.mark.parametrize("plot", CURVE_FUNCTIONS, ids=lambda plot: plot.__name__)
def test_curves_empty_arrays_write_note(plot):
    figure = plot({"empty": (np.array([]), np.array([]))})

    assert "empty: no rows to plot" in all_texts(figure)


@pytest.mark.parametrize("plot", CURVE_FUNCTIONS, ids=lambda plot: plot.__name__)
def test_curves_all_nan_scores_write_note(plot):
    figure = plot({"broken": (LABELS, np.full(len(LABELS), np.nan))})

    assert "broken: 8 rows with a NaN" in all_texts(figure)


def test_roc_one_class_writes_note():
    curves = {"no conversions": (np.zeros(6, dtype=int), np.linspace(0.1, 0.6, 6)), "champion": (LABELS, CHAMPION)}

    figure = roc_figure(curves)

    assert "no conversions: only one class in this slice, ROC undefined" in all_texts(figure)
    assert len(figure.axes[0].lines) == 2


def test_precision_recall_one_class_writes_note():
    figure = precision_recall_figure({"all converted": (np.ones(4, dtype=int), np.array([0.2, 0.4, 0.6, 0.8]))})

    assert "all converted: only one class" in all_texts(figure)


def test_lift_no_conversions_writes_note():
    figure = lift_figure({"no conversions": (np.zeros(6, dtype=int), np.linspace(0.1, 0.6, 6))})

    assert "no conversions: no conversions in this slice, gain undefined" in all_texts(figure)


def test_calibration_one_class_still_drawn():
    labels = np.zeros(4, dtype=int)
    probabilities = np.array([0.1, 0.15, 0.6, 0.7])

    line = line_labelled(calibration_figure({"model": (labels, probabilities)}, n_bins=2).axes[0], "model")

    np.testing.assert_allclose(line.get_xdata(), [0.125, 0.65])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.0])


# Feature importance and SHAP


def test_importance_largest_on_top():
    importance = pd.Series({"seats": 3.0, "visits": 10.0, "plan": 1.0, "unused": np.nan}, name="gain")

    ax = importance_figure(importance, top=2).axes[0]

    assert tick_labels_top_down(ax) == ["visits", "seats"]


def test_importance_bar_widths():
    importance = pd.Series({"seats": 3.0, "visits": 10.0, "plan": 1.0}, name="gain")

    ax = importance_figure(importance).axes[0]
    widths_top_down = [bar.get_width() for bar in sorted(ax.patches, key=lambda bar: -bar.get_y())]

    assert widths_top_down == [10.0, 3.0, 1.0]


def test_importance_empty_writes_note():
    figure = importance_figure(pd.Series(dtype=float))

    assert "no feature importances" in all_texts(figure)


def shap_case(n_rows: int = 400):
    rng = np.random.default_rng(3)
    features = pd.DataFrame(
        {
            "visits": rng.integers(0, 50, n_rows).astype(float),
            "plan": rng.choice(["free", "team", "enterprise"], n_rows),
            "seats": rng.normal(size=n_rows),
            "country": pd.Categorical(rng.choice(["DE", "FR"], n_rows)),
        }
    )
    scales = np.array([0.2, 1.5, 0.7, 0.05])
    contributions = rng.normal(size=(n_rows, 4)) * scales
    return contributions, features


def test_shap_order_follows_mean_abs():
    contributions, features = shap_case()
    mean_abs = np.abs(contributions).mean(axis=0)
    expected = [features.columns[i] for i in np.argsort(-mean_abs)]

    ax = shap_summary_figure(contributions, features).axes[0]

    assert tick_labels_top_down(ax) == expected


def test_shap_top_limits_rows():
    contributions, features = shap_case()

    ax = shap_summary_figure(contributions, features, top=2).axes[0]

    assert tick_labels_top_down(ax) == ["plan", "seats"]
    assert len(ax.collections) == 2


def test_shap_categorical_points_are_grey():
    contributions, features = shap_case()

    ax = shap_summary_figure(contributions, features, top=1).axes[0]
    colours = ax.collections[0].get_facecolors()

    np.testing.assert_allclose(colours[:, :3], np.full((len(colours), 3), 0.6))


def test_shap_numeric_colour_by_rank():
    values = pd.DataFrame({"visits": [5.0, 1.0, 100.0, np.nan]})
    contributions = np.array([[0.1], [-0.2], [0.3], [0.0]])

    ax = shap_summary_figure(contributions, values).axes[0]
    colours = ax.collections[0].get_facecolors()
    colourmap = matplotlib.colormaps["coolwarm"]

    # Ranks among the 3 present values: 5 is the middle, 1 the lowest, 100 the highest.
    np.testing.assert_allclose(colours[0], colourmap(0.5))
    np.testing.assert_allclose(colours[1], colourmap(0.0))
    np.testing.assert_allclose(colours[2], colourmap(1.0))
    np.testing.assert_allclose(colours[3][:3], [0.6, 0.6, 0.6])


def test_shap_subsample_is_deterministic():
    contributions, features = shap_case(n_rows=1000)

    first = shap_summary_figure(contributions, features, max_points=100, seed=4).axes[0]
    second = shap_summary_figure(contributions, features, max_points=100, seed=4).axes[0]

    assert len(first.collections[0].get_offsets()) == 100
    np.testing.assert_array_equal(first.collections[0].get_offsets(), second.collections[0].get_offsets())


def test_shap_colour_bar_labels():
    contributions, features = shap_case()

    figure = shap_summary_figure(contributions, features)
    colour_bar_ax = figure.axes[1]

    assert [label.get_text() for label in colour_bar_ax.get_yticklabels()] == ["low", "high"]


def test_shap_bias_column_raises():
    contributions, features = shap_case()
    with_bias = np.column_stack([contributions, np.zeros(len(contributions))])

    with pytest.raises(ValueError, match="bias"):
        shap_summary_figure(with_bias, features)


def test_shap_row_mismatch_raises():
    contributions, features = shap_case()

    with pytest.raises(ValueError, match="shape"):
        shap_summary_figure(contributions[:10], features)


def test_shap_empty_writes_note():
    _, features = shap_case()

    figure = shap_summary_figure(np.zeros((0, 4)), features.head(0))

    assert "no SHAP values to plot" in all_texts(figure)


# Metrics by fold


def fold_frame() -> pd.DataFrame:
    cutoffs = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"] * 2)
    return pd.DataFrame(
        {
            "model": ["champion"] * 3 + ["challenger"] * 3,
            "fold": [0, 1, 2] * 2,
            "cutoff": cutoffs,
            "roc_auc": [0.80, 0.82, 0.84, 0.79, 0.81, np.nan],
        }
    )


def test_folds_line_per_model():
    ax = metrics_by_fold_figure(fold_frame()).axes[0]

    assert len(ax.lines) == 2
    assert len(legend_texts(ax)) == 2


def test_folds_legend_shows_mean():
    ax = metrics_by_fold_figure(fold_frame()).axes[0]

    # The challenger's NaN fold is left out of its mean.
    assert "champion (mean 0.820)" in legend_texts(ax)
    assert "challenger (mean 0.800)" in legend_texts(ax)


def test_folds_ticks_show_cutoff():
    ax = metrics_by_fold_figure(fold_frame()).axes[0]

    assert [label.get_text() for label in ax.get_xticklabels()] == [
        "0\n2024-01-01",
        "1\n2024-02-01",
        "2\n2024-03-01",
    ]


def test_folds_unknown_metric_raises():
    with pytest.raises(ValueError, match="pr_auc"):
        metrics_by_fold_figure(fold_frame(), metric="pr_auc")


def test_folds_duplicate_rows_raise():
    frame = pd.concat([fold_frame(), fold_frame().head(1)])

    with pytest.raises(ValueError, match="more than one row"):
        metrics_by_fold_figure(frame)


def test_folds_empty_writes_note():
    figure = metrics_by_fold_figure(fold_frame().head(0))

    assert "no folds to plot" in all_texts(figure)


# save_png


def test_save_png_writes_png(tmp_path):
    path = save_png(roc_figure(two_models()), tmp_path / "plots" / "roc.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_save_png_directory_raises(tmp_path):
    with pytest.raises(IsADirectoryError):
        save_png(roc_figure(two_models()), tmp_path)


# HTML report


def summary_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "roc_auc": [0.7512, 0.7734, 0.6401],
            "log_loss": [0.412, 0.398, 0.455],
            "ece": [0.021, 0.034, 0.012],
            "base_rate": [0.05, 0.05, 0.05],
            "n": [12345.0, 12345.0, 12345.0],
        },
        index=pd.Index(["champion v3", "<script>alert(1)</script>", "rules score"], name="model"),
    )


@pytest.fixture
def report_text(tmp_path) -> str:
    saved = save_png(lift_figure(two_models()), tmp_path / "lift.png")
    figures = {"ROC curve": roc_figure(two_models()), "Cumulative gain": saved}
    notes = ["Holdout is the newest 15% of leads & <b>not</b> shuffled."]

    path = write_comparison_report(tmp_path / "out" / "report.html", "Models <v3 vs v4>", summary_frame(), figures, notes)
    return path.read_text(encoding="utf-8")


def test_report_escapes_model_name(report_text):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_text
    assert "<script>" not in report_text


def test_report_escapes_title_and_notes(report_text):
    assert "Models &lt;v3 vs v4&gt;" in report_text
    assert "&amp; &lt;b&gt;not&lt;/b&gt; shuffled" in report_text


def test_report_bolds_highest_auc(report_text):
    assert "<strong>0.773</strong>" in report_text
    assert "<strong>0.751</strong>" not in report_text


def test_report_bolds_lowest_loss(report_text):
    assert "<strong>0.398</strong>" in report_text
    assert "<strong>0.012</strong>" in report_text
    assert "<strong>0.412</strong>" not in report_text


def test_report_no_bold_for_counts(report_text):
    assert report_text.count("12,345") == 3
    assert "<strong>12,345</strong>" not in report_text


def test_report_no_bold_for_unknown_column(report_text):
    assert "<strong>0.050</strong>" not in report_text


def test_report_embeds_every_figure(report_text):
    assert report_text.count('<img src="data:image/png;base64,') == 2
    assert "<h2>ROC curve</h2>" in report_text
    assert "<h2>Cumulative gain</h2>" in report_text


def test_report_images_decode_to_png(report_text):
    encoded = re.findall(r'src="data:image/png;base64,([^"]+)"', report_text)

    for image in encoded:
        assert base64.b64decode(image)[:8] == PNG_SIGNATURE


def test_report_has_no_network_links(report_text):
    assert "http://" not in report_text
    assert "https://" not in report_text


def test_report_directory_path_raises(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_comparison_report(tmp_path, "Models", summary_frame(), {})


def test_report_non_png_file_raises(tmp_path):
    not_png = tmp_path / "plot.png"
    not_png.write_text("not an image")

    with pytest.raises(ValueError, match="not a PNG"):
        write_comparison_report(tmp_path / "report.html", "Models", summary_frame(), {"plot": not_png})


def test_report_leaves_no_temporary_file(tmp_path):
    write_comparison_report(tmp_path / "report.html", "Models", summary_frame(), {})

    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_report_replaces_existing_file(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old page")

    write_comparison_report(path, "New models", summary_frame(), {})

    assert "New models" in path.read_text(encoding="utf-8")


def test_report_ties_all_bold(tmp_path):
    summary = pd.DataFrame({"roc_auc": [0.8, 0.8, 0.7]}, index=["a", "b", "c"])

    text = write_comparison_report(tmp_path / "report.html", "Ties", summary, {}).read_text(encoding="utf-8")

    assert text.count("<strong>0.800</strong>") == 2


def test_report_single_model_not_bold(tmp_path):
    summary = pd.DataFrame({"roc_auc": [0.8]}, index=["champion"])

    text = write_comparison_report(tmp_path / "report.html", "One model", summary, {}).read_text(encoding="utf-8")

    assert "<strong>" not in text
