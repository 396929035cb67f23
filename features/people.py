"""People behind user records: one person may hold several user accounts.

A product's user base often has the same person twice, for example after a
sign-up with a work email and another with a personal one. Two user records
belong to the same person when they share a strong key (personal email,
phone or LinkedIn handle), directly or through a chain of records. A key
value shared by many records is not personal and joins nobody. Names are
not a key here, because namesakes would merge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

PERSON_KEYS = ("personal_email", "phone", "linkedin")
# A personal key shared by more records than this is not personal: an office
# switchboard, a "test@test.com" placeholder or a default number would
# otherwise merge unrelated people into one.
MAX_RECORDS_PER_KEY = 3


def assign_person_ids(prepared_users: pd.DataFrame) -> pd.Series:
    """Return a person id per user record, indexed like ``prepared_users``.

    The person id is the ``unique_id`` of the person's first record in the
    table, so it is stable for a given table order.
    """
    n = len(prepared_users)
    if n == 0:
        return pd.Series(dtype="object")

    rows, cols = [], []
    for key in PERSON_KEYS:
        values = prepared_users[key]
        present = values.notna().to_numpy(copy=True)
        if present.any():
            counts = values[present].map(values[present].value_counts())
            present[np.flatnonzero(present)[(counts > MAX_RECORDS_PER_KEY).to_numpy()]] = False
        if not present.any():
            continue
        codes = pd.factorize(values[present])[0]
        positions = np.flatnonzero(present)
        # Link each record to the first record holding the same value.
        first_of_code = pd.Series(positions).groupby(codes).transform("min").to_numpy()
        rows.append(positions)
        cols.append(first_of_code)

    if rows:
        graph = coo_matrix((np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
    else:
        labels = np.arange(n)

    ids = prepared_users["unique_id"].to_numpy()
    first_position = pd.Series(np.arange(n)).groupby(labels).transform("min").to_numpy()
    return pd.Series(ids[first_position], index=prepared_users.index, name="person_id")


def one_record_per_person(prepared_users: pd.DataFrame, person_ids: pd.Series) -> pd.DataFrame:
    """Keep the first record of each person, for statistics over people."""
    return prepared_users.loc[~person_ids.duplicated(keep="first")]
