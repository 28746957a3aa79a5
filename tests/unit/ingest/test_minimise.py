"""Minimisation: keyed pseudonyms and the certificate's record of what a snapshot left behind."""

import pytest

from services.ingest.domain.minimise import minimisation_gate, pseudonym
from services.ingest.domain.rows import FieldSpec
from services.kernel.errors import ConfigError
from services.kernel.settings import Settings
from services.kernel.signing import PSEUDONYM_KEY, keys_dir, pseudonym_key


def test_pseudonyms_are_stable_per_key_and_reveal_nothing_without_it():
    a, b = b"k" * 32, b"j" * 32
    assert pseudonym(a, "region-1") == pseudonym(a, "region-1") != pseudonym(a, "region-2")
    assert pseudonym(a, "region-1") != pseudonym(b, "region-1"), "another key, another pseudonym: not a plain digest"
    assert pseudonym(a, "region-1").startswith("h-") and len(pseudonym(a, "region-1")) == 18
    assert pseudonym(a, "") == "", "no slice stays no slice"


def test_the_gate_names_what_was_kept_and_left_behind():
    g = minimisation_gate({"text", "label", "email", "notes"}, FieldSpec(), "keep")
    assert g.passed and g.counts == {"source_columns": 4, "kept": 2, "dropped": 2, "hashed": 0}
    assert "left behind 2 other columns: email, notes" in g.reason and g.examples == ("email", "notes")
    h = minimisation_gate({"text", "label", "region"}, FieldSpec(slice="region"), "hash")
    assert h.counts["hashed"] == 1 and "slice (region, as keyed pseudonyms)" in h.reason and "left behind" not in h.reason


def test_the_pseudonym_key_is_made_once_private_and_refused_when_malformed(tmp_path):
    s = Settings(state_dir=tmp_path)
    key = pseudonym_key(s)
    path = keys_dir(s) / PSEUDONYM_KEY
    assert len(key) == 32 and pseudonym_key(s) == key and path.stat().st_mode & 0o777 == 0o600
    path.write_text("not hex")
    with pytest.raises(ConfigError, match="cannot read the pseudonym key"):
        pseudonym_key(s)
    path.unlink()
    with pytest.raises(ConfigError, match="no pseudonym key"):
        pseudonym_key(s.replace(signing_keys_auto=False))


def test_a_plan_that_hashes_slices_without_a_key_is_refused(tmp_path):
    """Fail closed: without the key the values would be kept as they are."""
    from services.ingest.domain.uri import check_uri
    from services.ingest.plan import Plan

    (tmp_path / "d.csv").write_text("text,label,region\n")
    loc = check_uri(str(tmp_path / "d.csv"), [tmp_path], [])
    with pytest.raises(ValueError, match="no pseudonym key"):
        Plan("t", loc, fields=FieldSpec(slice="region"), slice_values="hash")
    assert Plan("t", loc, fields=FieldSpec(slice="region"), slice_values="hash", pseudonym_key=b"k" * 32)
