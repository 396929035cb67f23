"""Per-feature contributions of a LightGBM model: exact TreeSHAP, computed once per decision pattern.

LightGBM's ``pred_contrib=True`` runs TreeSHAP on every row and tree. For one
tree, a row's TreeSHAP values depend on the row only through the branch it
takes at each split of that tree, including splits off its own path, because
TreeSHAP weighs every branch whose feature is "known". Rows that take the same
branch at every split of a tree (the same *decision pattern*) therefore get the
same values for that tree. ``PatternTreeShap`` computes the pattern of every
row and tree with array operations and runs LightGBM's TreeSHAP once per new
pattern, on one row that has it. It caches the result and adds the cached
values up per row. The sum equals ``pred_contrib`` up to floating-point
rounding, because no value is approximated.

How a pattern is computed: each feature's values are mapped to a *state*,
the interval between two consecutive split thresholds that the value falls
in (or missing, zero, or the category code). Every split's decision is
constant within a state, so a table per (tree, feature) gives the bits of
that tree's splits on that feature, and a row's pattern is the OR of its
features' table entries. The decisions follow LightGBM 4.x's
``NumericalDecision`` and ``CategoricalDecision`` (``include/LightGBM/tree.h``)
and its conversion of input values with ``|value| <= kZeroThreshold`` to 0
(``c_api.cpp``). Rows whose categorical value is missing or negative, which
LightGBM versions treat differently and ``LeadScorer.encode`` never produces,
go to ``pred_contrib`` directly.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# LightGBM declares kZeroThreshold as the float literal 1e-35f widened to double.
ZERO_THRESHOLD = float(np.float32(1e-35))
MAX_SPLITS_PER_TREE = 64
# Trees with at most this many splits index a dense array of 2**splits codes,
# which takes 16 KB per tree at 12 splits. Larger trees hash their codes.
MAX_DENSE_SPLITS = 12
# Below about this many rows, one pred_contrib call costs less than one call
# per tree (measured with a 120-tree model and an empty cache).
MIN_ROWS_FOR_PATTERNS = 256
# Cached contributions are dropped when they would exceed this many float64
# values (8,000,000 values are 64 MB).
DEFAULT_MAX_CACHED_VALUES = 8_000_000


def lightgbm_contributions(booster: lgb.Booster, matrix: np.ndarray, threads: int = 0) -> np.ndarray:
    """Return LightGBM's own TreeSHAP values: one column per feature and a last bias column."""
    if len(matrix) == 0:
        return np.zeros((0, booster.num_feature() + 1))
    return booster.predict(matrix, pred_contrib=True, num_threads=threads)


def numeric_matrix(model_matrix: pd.DataFrame) -> np.ndarray:
    """Return the float64 matrix LightGBM predicts on: category codes for categoricals, NaN for missing."""
    columns = []
    for name in model_matrix.columns:
        values = model_matrix[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy().astype("float64")
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(values.to_numpy(dtype="float64", na_value=np.nan))
    if not columns:
        return np.zeros((len(model_matrix), 0))
    return np.ascontiguousarray(np.column_stack(columns))


@dataclass
class _Split:
    bit: int
    feature: int
    categorical: bool
    threshold: float
    categories: frozenset[int]
    missing_type: str
    default_left: bool


@dataclass
class _FeatureStates:
    """A feature's mapping from values to states, with a representative value per state."""

    categorical: bool
    thresholds: np.ndarray  # numeric: sorted split thresholds
    n_categories: int  # categorical: codes 0 .. n_categories - 1 have their own state
    representatives: list[float]

    def states(self, values: np.ndarray) -> np.ndarray:
        """Map values to state numbers, in the order of ``representatives``."""
        if self.categorical:
            inside = (values >= 0) & (values < self.n_categories)
            codes = np.where(inside, values, self.n_categories)
            return codes.astype(np.intp)
        states = np.searchsorted(self.thresholds, values, side="left")
        states[values == 0.0] = len(self.thresholds) + 1
        states[np.isnan(values)] = len(self.thresholds) + 2
        return states


def _goes_left(split: _Split, value: float) -> bool:
    """Return LightGBM's decision for one split and one input value (after zero mapping)."""
    if split.categorical:
        # Only codes >= 0 reach here; NaN and negative codes are sent to pred_contrib.
        return int(value) in split.categories
    if math.isnan(value) and split.missing_type != "NaN":
        value = 0.0
    is_zero = -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD
    if (split.missing_type == "Zero" and is_zero) or (split.missing_type == "NaN" and math.isnan(value)):
        return split.default_left
    return value <= split.threshold


def _numeric_states(thresholds: np.ndarray) -> _FeatureStates:
    """Build the states of a numeric feature: intervals between thresholds, then zero, then NaN.

    Values with ``|value| <= ZERO_THRESHOLD`` reach the trees as exactly 0,
    so an interval's representative must lie outside that zone.
    """
    below_zero = float(np.nextafter(-ZERO_THRESHOLD, -np.inf))
    representatives = []
    for position, upper in enumerate(thresholds):
        lower = thresholds[position - 1] if position else -np.inf
        if abs(upper) > ZERO_THRESHOLD or not lower < below_zero:
            representatives.append(float(upper))
        else:
            representatives.append(below_zero)
    last = float(thresholds[-1]) if len(thresholds) else 0.0
    representatives.append(max(float(np.nextafter(last, np.inf)), float(np.nextafter(ZERO_THRESHOLD, np.inf))))
    representatives += [0.0, math.nan]
    return _FeatureStates(False, thresholds, 0, representatives)


class _Tree:
    """One tree's splits, its pattern tables and its cache of contributions per pattern."""

    def __init__(self, index: int, splits: list[_Split], states: dict[int, _FeatureStates]):
        self.index = index
        self.features = sorted({split.feature for split in splits})
        # One bit per split: the pattern of a tree with up to 16 splits fits in 16 bits.
        self.code_type = np.uint64
        if len(splits) <= 32:
            self.code_type = np.uint32
        if len(splits) <= 16:
            self.code_type = np.uint16
        self.tables = {feature: self._table(feature, splits, states[feature]) for feature in self.features}
        # Trees with few splits look their patterns up in a dense array of
        # all 2**splits codes, which costs far less than hashing each code.
        self.dense = len(splits) <= MAX_DENSE_SPLITS
        self.n_codes = 1 << len(splits)
        # The tree's expected value, the same for every row; set with its first pattern.
        self.bias = 0.0
        self.clear()

    def _table(self, feature: int, splits: list[_Split], states: _FeatureStates) -> np.ndarray:
        table = np.zeros(len(states.representatives), dtype=self.code_type)
        for split in splits:
            if split.feature != feature:
                continue
            bit = self.code_type(1) << self.code_type(split.bit)
            for state, value in enumerate(states.representatives):
                if _goes_left(split, value):
                    table[state] |= bit
        return table

    def clear(self) -> None:
        self.known = pd.Index(np.zeros(0, dtype=self.code_type))
        # One row per used feature, one column per known pattern.
        self.values = np.zeros((len(self.features), 0))
        # Dense trees: the column in ``values`` of every code, -1 until computed.
        self.column_of_code = np.full(self.n_codes if self.dense else 0, -1, dtype=np.int32)

    def codes(self, states: dict[int, np.ndarray], n_rows: int) -> np.ndarray:
        code = np.zeros(n_rows, dtype=self.code_type)
        for feature in self.features:
            code |= self.tables[feature][states[feature]]
        return code


class PatternTreeShap:
    """Exact TreeSHAP contributions of a binary LightGBM model, cached per decision pattern.

    ``contributions(matrix)`` returns the same array as
    ``booster.predict(matrix, pred_contrib=True)``. The cache of contributions
    per (tree, pattern) lives as long as the object, so scoring a file in
    chunks with one object computes each pattern once. The cache is dropped
    when it would hold more than ``max_cached_values`` floats. Calls from
    several threads take turns, because they share the cache.
    """

    def __init__(self, booster: lgb.Booster, max_cached_values: int = DEFAULT_MAX_CACHED_VALUES):
        self.booster = booster
        self.n_features = booster.num_feature()
        self.max_cached_values = max_cached_values
        self.patterns_computed = 0
        self._lock = threading.Lock()
        model = booster.dump_model()
        self.sigmoid = _binary_sigmoid(str(model.get("objective", "")))
        self.supported = model.get("num_tree_per_iteration", 1) == 1
        trees = [_tree_splits(tree["tree_structure"]) for tree in model["tree_info"]]
        if any(len(splits) > MAX_SPLITS_PER_TREE for splits in trees):
            self.supported = False
        if not self.supported:
            logger.info("Pattern-cached TreeSHAP does not support this model; using LightGBM's pred_contrib on every row.")
            return
        self.states = _feature_states(trees)
        self.categorical = [feature for feature, states in self.states.items() if states.categorical]
        self.trees = [_Tree(index, splits, self.states) for index, splits in enumerate(trees)]

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Return TreeSHAP values in log-odds: one column per feature and a last bias column."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if not self.supported or len(matrix) < MIN_ROWS_FOR_PATTERNS:
            return lightgbm_contributions(self.booster, matrix, threads=1 if len(matrix) < MIN_ROWS_FOR_PATTERNS else 0)

        direct = self._rows_for_lightgbm(matrix)
        result = np.empty((len(matrix), self.n_features + 1))
        if direct.any():
            result[direct] = lightgbm_contributions(self.booster, matrix[direct])
        patterned = ~direct
        if patterned.any():
            with self._lock:
                result[patterned] = self._pattern_contributions(matrix[patterned] if direct.any() else matrix)
        return result

    def _rows_for_lightgbm(self, matrix: np.ndarray) -> np.ndarray:
        """Mark rows with a missing or negative category code, which go to pred_contrib."""
        direct = np.zeros(len(matrix), dtype=bool)
        for feature in self.categorical:
            values = matrix[:, feature]
            direct |= np.isnan(values) | (values < 0)
        return direct

    def _pattern_contributions(self, matrix: np.ndarray) -> np.ndarray:
        n_rows = len(matrix)
        states = self._states(matrix)
        columns = np.zeros((self.n_features + 1, n_rows))
        for tree in self.trees:
            codes = tree.codes(states, n_rows)
            rows = self._dense_columns(tree, codes, matrix) if tree.dense else self._hashed_columns(tree, codes, matrix)
            for place, feature in enumerate(tree.features):
                columns[feature] += tree.values[place][rows]
        # The bias is the same for every row: the trees' expected values added up.
        columns[self.n_features] = sum(tree.bias for tree in self.trees)
        return columns.T

    def _dense_columns(self, tree: _Tree, codes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Return each row's column in ``tree.values``, looking codes up in the tree's dense array."""
        rows = tree.column_of_code[codes]
        unknown = rows < 0
        if not unknown.any():
            return rows

        unknown_rows = np.flatnonzero(unknown)
        slots, uniques = pd.factorize(codes[unknown_rows])
        tree.column_of_code[uniques] = self._cached_positions(tree, uniques, slots, matrix, unknown_rows)
        rows = tree.column_of_code[codes]
        if (rows < 0).any():
            # The cache was full and started anew, dropping this call's known codes too.
            slots, uniques = pd.factorize(codes)
            tree.column_of_code[uniques] = self._cached_positions(tree, uniques, slots, matrix)
            rows = tree.column_of_code[codes]
        return rows

    def _hashed_columns(self, tree: _Tree, codes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Return each row's column in ``tree.values``, finding codes by hashing."""
        slots, uniques = pd.factorize(codes)
        return self._cached_positions(tree, uniques, slots, matrix)[slots]

    def _states(self, matrix: np.ndarray) -> dict[int, np.ndarray]:
        states = {}
        for feature, feature_states in self.states.items():
            values = matrix[:, feature]
            # LightGBM passes values with |value| <= kZeroThreshold to the trees as 0.
            values = np.where(np.abs(values) <= ZERO_THRESHOLD, 0.0, values)
            states[feature] = feature_states.states(values)
        return states

    def _cached_positions(
        self, tree: _Tree, uniques: np.ndarray, slots: np.ndarray, matrix: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Return, per unique pattern, its column in ``tree.values``, computing new patterns first.

        ``slots`` gives the pattern of each row of ``matrix``, or of each row
        listed in ``rows`` when that is given.
        """
        positions = tree.known.get_indexer(uniques)
        new = np.flatnonzero(positions < 0)
        if len(new) == 0:
            return positions
        if self._cache_size() + len(new) * len(tree.features) > self.max_cached_values:
            logger.info("TreeSHAP pattern cache reached %s values; starting a new one.", f"{self.max_cached_values:,}")
            for other in self.trees:
                other.clear()
            positions = np.full(len(uniques), -1)
            new = np.arange(len(uniques))

        # Any row with a pattern gives that pattern's values; take the last one.
        representative = np.empty(len(uniques), dtype=np.int64)
        representative[slots] = np.arange(len(slots)) if rows is None else rows
        values = self.booster.predict(
            matrix[representative[new]], pred_contrib=True, start_iteration=tree.index, num_iteration=1, num_threads=1
        )
        self.patterns_computed += len(new)

        start = tree.values.shape[1]
        tree.values = np.concatenate([tree.values, values[:, tree.features].T], axis=1)
        tree.bias = float(values[0, self.n_features])
        tree.known = tree.known.append(pd.Index(uniques[new]))
        positions[new] = np.arange(start, start + len(new))
        return positions

    def _cache_size(self) -> int:
        return sum(tree.values.size for tree in self.trees)


def _binary_sigmoid(objective: str) -> float | None:
    """Return the sigmoid scale of a binary objective ("binary sigmoid:1"), or None for another objective."""
    parts = objective.split()
    if not parts or parts[0] != "binary":
        return None
    for part in parts[1:]:
        if part.startswith("sigmoid:"):
            return float(part.removeprefix("sigmoid:"))
    return 1.0


def _tree_splits(node: dict) -> list[_Split]:
    """List the internal nodes of a dumped tree, numbered by their ``split_index``."""
    splits = []
    stack = [node]
    while stack:
        current = stack.pop()
        if "split_index" not in current:
            continue
        categorical = current["decision_type"] == "=="
        categories = frozenset(int(code) for code in str(current["threshold"]).split("||")) if categorical else frozenset()
        splits.append(
            _Split(
                bit=int(current["split_index"]),
                feature=int(current["split_feature"]),
                categorical=categorical,
                threshold=math.nan if categorical else float(current["threshold"]),
                categories=categories,
                missing_type=str(current.get("missing_type", "None")),
                default_left=bool(current.get("default_left", False)),
            )
        )
        stack += [current["left_child"], current["right_child"]]
    return splits


def _feature_states(trees: list[list[_Split]]) -> dict[int, _FeatureStates]:
    """Collect, per feature used in any split, its thresholds or categories and build its states."""
    thresholds: dict[int, set[float]] = {}
    categories: dict[int, set[int]] = {}
    for splits in trees:
        for split in splits:
            if split.categorical:
                categories.setdefault(split.feature, set()).update(split.categories)
            else:
                thresholds.setdefault(split.feature, set()).add(split.threshold)

    states = {}
    for feature, values in thresholds.items():
        states[feature] = _numeric_states(np.array(sorted(values), dtype=np.float64))
    for feature, codes in categories.items():
        # A code above every split category goes right everywhere, like the catch-all state.
        n_categories = max(codes) + 1
        states[feature] = _FeatureStates(True, np.zeros(0), n_categories, [float(code) for code in range(n_categories + 1)])
    return states


