"""Ingest's metrics from real certificates: rows in and out of every gate rows pass through, rejections by gate."""

from services.ingest import instruments
from tests.support import local_metrics, metric_total

ROWS, REJECTIONS = "tuneline_ingest_gate_rows_total", "tuneline_ingest_rejections_total"
ROW_GATES = ("schema", "pii", "minimisation", "dedup", "leakage", "labels")


def _counted(certificate):
    """Count one certificate; {(gate, direction): rows} and {gate: rejections} it added."""
    local_metrics()
    before = local_metrics()
    instruments.certified(certificate)
    after = local_metrics()

    def delta(name, **labels):
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    rows = {(g, d): delta(ROWS, gate=g, direction=d) for g in ROW_GATES for d in ("in", "out")}
    return rows, {g: delta(REJECTIONS, gate=g) for g in instruments.GATES}


def test_a_certified_dataset_flows_through_every_gate_losing_only_its_duplicates(kit, tmp_path):
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "d.csv", kit.sentences(150) + kit.sentences(50)))
    assert result.passed
    rows, rejections = _counted(result.certificate)
    assert [(rows[g, "in"], rows[g, "out"]) for g in ROW_GATES] == [
        (200, 200), (200, 200), (200, 200), (200, 150), (150, 150), (150, 150)]
    assert result.train_rows + result.eval_rows == 150
    assert set(rejections.values()) == {0}


def test_a_gate_that_refuses_lets_no_row_out_and_counts_one_rejection(kit, tmp_path):
    rows_in = kit.sentences(50)
    rows_in[3] = ("write to me at a.b@c.org", rows_in[3][1])
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "p.csv", rows_in), pii_action="reject")
    rows, rejections = _counted(result.certificate)
    assert (rows["schema", "in"], rows["schema", "out"], rows["pii", "in"], rows["pii", "out"]) == (50, 50, 50, 0)
    assert rows["minimisation", "in"] == 0 and rows["dedup", "in"] == 0, "nothing reaches the gates after a refusal"
    assert rejections == {g: float(g == "pii") for g in instruments.GATES}


def test_too_few_examples_per_label_rejects_at_the_label_gate(kit, tmp_path):
    result = kit.run_certify(tmp_path, kit.write_csv(tmp_path / "d.csv", kit.sentences(40)), min_examples=100)
    rows, rejections = _counted(result.certificate)
    assert (rows["leakage", "out"], rows["labels", "in"], rows["labels", "out"]) == (40, 40, 0)
    assert rejections["labels"] == 1 and rejections["leakage"] == 0
