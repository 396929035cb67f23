"""Splink linkage of contacts to users: model, hand-checked pairs, quality."""

import pandas as pd
import pytest

import leadlink.features.linkage as linkage_module
from leadlink.features.linkage import IdentityLinker, best_match_per_contact, link_quality, link_workspace, prepare_for_linkage
from leadlink.features.identity import prepare_identity_record
from leadlink.features.realtime import RealtimeLinker
from leadlink.features.workspace import load_workspace


@pytest.fixture(scope="module")
def fitted(demo_workspace):
    workspace = load_workspace(demo_workspace)
    links, linker, result = link_workspace(workspace.contacts, workspace.users)
    return workspace, links, linker


def user_row(**fields):
    base = {"user_id": "U-test", "country": "US"}
    return {**base, **fields}


def contact_row(**fields):
    base = {"contact_id": "C-test", "country": "US"}
    return {**base, **fields}


def pair_probability(fitted, contact: dict, user: dict) -> float:
    """Score one hand-made pair with the user added to the generated users.

    The other users matter: term frequencies come from the users table, so a
    one-row table would make every name look as common as possible.
    """
    workspace, _, linker = fitted
    users = pd.concat([workspace.users, pd.DataFrame([user])], ignore_index=True)
    contacts, prepared_users = prepare_for_linkage(pd.DataFrame([contact]), users)
    pairs, _ = linker.predict_pairs(contacts, prepared_users, threshold=0.0)
    pair = pairs[pairs["user_id"] == user["user_id"]]
    return float(pair["match_probability"].iloc[0]) if len(pair) else 0.0


def test_generated_links_precision_and_recall(fitted, demo_workspace):
    _, links, _ = fitted
    truth = pd.read_parquet(demo_workspace / "truth" / "links.parquet")
    quality = link_quality(links, truth)
    assert quality["precision"] >= 0.85
    assert quality["recall_beyond_name"] >= 0.9


def test_nickname_and_phone_link(fitted):
    user = user_row(first_name="Robert", last_name="Kowalczyk", phone="+1 415 555 0134", city="Springfield")
    contact = contact_row(first_name="Bob", last_name="Kowalczyk", phone="(415) 555-0134", email="bob.k@newco.io", city="Springfield")
    assert pair_probability(fitted, contact, user) >= 0.8


def test_personal_gmail_variant_links(fitted):
    user = user_row(first_name="Søren", last_name="Lindqvist", personal_email="soren.lindqvist@gmail.com")
    contact = contact_row(first_name="Soren", last_name="Lindqvist", personal_email="SorenLindqvist+crm@googlemail.com")
    assert pair_probability(fitted, contact, user) >= 0.8


def test_new_surname_links_on_other_evidence(fitted):
    user = user_row(first_name="Katarzyna", last_name="Nowak", phone="+1 415 555 0177", linkedin_url="linkedin.com/in/kasia-nowak-77")
    contact = contact_row(first_name="Katarzyna", last_name="Lindholm", phone="415-555-0177", linkedin_url="https://www.linkedin.com/in/kasia-nowak-77/")
    assert pair_probability(fitted, contact, user) >= 0.8


def test_second_personal_address_does_not_veto(fitted):
    user = user_row(first_name="Ingrid", last_name="Vasquez-Ohl", personal_email="ingrid.v@gmail.com", phone="+1 212 555 0142")
    contact = contact_row(first_name="Ingrid", last_name="Vasquez-Ohl", personal_email="ingrid@outlook.com", phone="(212) 555-0142")
    assert pair_probability(fitted, contact, user) >= 0.8


def test_common_name_alone_does_not_link(fitted):
    workspace, _, linker = fitted
    user = user_row(first_name="Maria", last_name="Garcia", job_title="Engineer")
    contact = contact_row(first_name="Maria", last_name="Garcia", job_title="Engineer")
    users = pd.concat([workspace.users, pd.DataFrame([user])], ignore_index=True)
    contacts, prepared_users = prepare_for_linkage(pd.DataFrame([contact]), users)
    result = linker.link(contacts, prepared_users, threshold=0.0)
    assert "U-test" not in set(result.links["user_id"])


def test_namesake_alone_does_not_link(fitted):
    user = user_row(first_name="John", last_name="Smith", email="john.smith@oldco.com", city="Boston", phone="+1 617 555 0101")
    contact = contact_row(first_name="John", last_name="Smith", email="jsmith2@otherco.com", city="Denver", phone="+1 303 555 0199")
    assert pair_probability(fitted, contact, user) < 0.5


def test_saved_model_reused(fitted, tmp_path):
    workspace, links, linker = fitted
    path = linker.save(tmp_path / "linkage.json")
    reloaded = IdentityLinker.load(path)
    again, _, _ = link_workspace(workspace.contacts, workspace.users, linker=reloaded)
    assert set(zip(again["contact_id"], again["user_id"])) == set(zip(links["contact_id"], links["user_id"]))


def test_realtime_matches_batch_weight(fitted):
    workspace, links, linker = fitted
    realtime = RealtimeLinker(linker.model_json_, workspace.users)
    sample = links.sort_values("contact_id").head(5)
    contacts = workspace.contacts.set_index("contact_id")
    for row in sample.itertuples():
        one = contacts.loc[[row.contact_id]].reset_index()
        found = realtime.link_one(one, threshold=0.0)
        assert found["user_id"].iloc[0] == row.user_id
        assert found["match_weight"].iloc[0] == pytest.approx(row.match_weight, abs=1e-6)


def test_realtime_weights_equal_batch_for_all_pairs(fitted):
    workspace, _, linker = fitted
    contacts, users = prepare_for_linkage(workspace.contacts, workspace.users)
    pairs, _ = linker.predict_pairs(contacts, users, threshold=0.0)
    realtime = RealtimeLinker(linker.model_json_, workspace.users)
    records = workspace.contacts.set_index("contact_id", drop=False)
    checked = 0
    for contact_id, group in pairs.groupby("contact_id"):
        fields = records.loc[contact_id].to_dict()
        prepared = realtime._add_term_frequencies(prepare_identity_record(fields, "contact_id"))
        scored = {pair["user_id"]: pair for pair in realtime.score_candidates(prepared)}
        for row in group.itertuples():
            assert row.user_id in scored, f"batch pair {contact_id}-{row.user_id} is not a real-time candidate"
            assert scored[row.user_id]["match_weight"] == pytest.approx(row.match_weight, abs=1e-9)
            assert scored[row.user_id]["evidence"] == row.evidence
            checked += 1
    assert checked == len(pairs) > 1000


def test_best_match_ties_go_to_smaller_id():
    pairs = pd.DataFrame(
        {
            "contact_id": ["C1", "C1", "C1", "C2"],
            "user_id": ["U9", "U3", "U5", "U1"],
            "match_weight": [5.0, 7.0, 7.0, 1.0],
            "match_probability": [0.9, 0.99, 0.99, 0.6],
            "evidence": ["", "", "", ""],
        }
    )
    best = best_match_per_contact(pairs).set_index("contact_id")["user_id"].to_dict()
    assert best == {"C1": "U3", "C2": "U1"}


def test_link_quality_by_hand():
    links = pd.DataFrame({"contact_id": ["C1", "C2", "C3"], "user_id": ["U1", "U2", "U9"]})
    truth = pd.DataFrame(
        {"contact_id": ["C1", "C2", "C3", "C4"], "user_id": ["U1", "U2", "U3", "U4"], "evidence": ["phone", "name", "name,city", ""]}
    )
    quality = link_quality(links, truth)
    assert quality["precision"] == pytest.approx(2 / 3)
    assert quality["recall"] == pytest.approx(2 / 4)
    # Beyond a name: C1 (phone) and C3 (city); only C1 is found.
    assert quality["recall_beyond_name"] == pytest.approx(1 / 2)


def test_realtime_links_equal_batch_links(fitted):
    workspace, links, linker = fitted
    realtime = RealtimeLinker(linker.model_json_, workspace.users)
    batch = links.set_index("contact_id")["user_id"].to_dict()
    for record in workspace.contacts.to_dict("records"):
        best = realtime.link_record(record, threshold=0.8)
        assert (best["user_id"] if best else None) == batch.get(record["contact_id"]), record["contact_id"]


def test_empty_identity_column_is_reported(demo_workspace, caplog):
    workspace = load_workspace(demo_workspace, tables=("contacts", "users"))
    users = workspace.users.drop(columns=["phone"])
    with caplog.at_level("WARNING", logger="leadlink.features.linkage"):
        links, _, _ = link_workspace(workspace.contacts, users)
    assert len(links) > 0
    assert "users.phone is filled on 0.0% of rows" in caplog.text


def test_retrain_without_phone_and_linkedin_stays_precise(demo_workspace):
    workspace = load_workspace(demo_workspace, tables=("contacts", "users"))
    contacts = workspace.contacts.drop(columns=["phone", "linkedin_url"])
    users = workspace.users.drop(columns=["phone", "linkedin_url"])
    links, _, _ = link_workspace(contacts, users)
    truth = pd.read_parquet(demo_workspace / "truth" / "links.parquet")
    assert link_quality(links, truth)["precision"] >= 0.95


def test_prepare_in_worker_equals_one_process(fitted, monkeypatch):
    workspace, _, _ = fitted
    serial_contacts, serial_users = prepare_for_linkage(workspace.contacts, workspace.users)
    # Lowering the threshold sends these small tables down the two-process path.
    monkeypatch.setattr(linkage_module, "PARALLEL_PREPARE_MIN_ROWS", 1)
    parallel_contacts, parallel_users = prepare_for_linkage(workspace.contacts, workspace.users, processes=2)
    pd.testing.assert_frame_equal(parallel_contacts, serial_contacts)
    pd.testing.assert_frame_equal(parallel_users, serial_users)
