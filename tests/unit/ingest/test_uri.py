"""R27: hostile dataset URIs are refused with a reason; Hypothesis: nothing accepted escapes the roots."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.domain.uri import check_uri
from services.kernel.errors import InvalidInput, NotFound


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "d.csv").write_text("text,label\nhi,x\n")
    (tmp_path / "secret.csv").write_text("text,label\nsecret,x\n")
    return r


def test_a_file_inside_the_root_is_accepted(root):
    loc = check_uri(str(root / "sub" / "d.csv"), [root], [])
    assert loc.local_path == (root / "sub" / "d.csv").resolve()
    assert check_uri(f"file://{root}/sub/d.csv", [root], []).local_path == loc.local_path


@pytest.mark.parametrize("tail", [
    "sub/../../secret.csv", "sub/%2e%2e/%2e%2e/secret.csv", "sub/%2E%2E/../secret.csv", "sub/%252e%252e/x",
    "sub/..%2f..%2fsecret.csv", "sub\\..\\..\\secret.csv",
])
def test_traversal_tricks_are_refused(root, tail):
    for uri in (f"{root}/{tail}", f"file://{root}/{tail}"):
        with pytest.raises(InvalidInput, match=r"'\.\.'"):
            check_uri(uri, [root], [])


def test_outside_paths_symlinks_and_schemes_are_refused(root, tmp_path):
    with pytest.raises(InvalidInput, match="outside the allowed data roots"):
        check_uri(str(tmp_path / "secret.csv"), [root], [])
    os.symlink(tmp_path / "secret.csv", root / "link.csv")
    with pytest.raises(InvalidInput, match="outside the allowed data roots"):
        check_uri(str(root / "link.csv"), [root], [])
    for uri in ("s3://bucket/x.csv", "http://evil/x.csv", "memory://x.csv"):
        with pytest.raises(InvalidInput, match="not allowed"):
            check_uri(uri, [root], [])
    assert not check_uri("memory://x.csv", [root], ["memory"]).is_local
    for bad in ("", f"{root}/sub/d.csv\x00.txt", "file://evil.example/etc/passwd", "/dev/zero"):
        with pytest.raises(InvalidInput):
            check_uri(bad, [root, Path("/dev")] if bad == "/dev/zero" else [root], [])


def test_missing_file_is_not_found(root):
    with pytest.raises(NotFound, match="does not exist"):
        check_uri(str(root / "nope.csv"), [root], [])


segment = st.sampled_from(["..", ".", "sub", "d.csv", "%2e%2e", "%2E.", "%252e%252e", "secret.csv", "", "link", "..%2f", "~"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(segment, max_size=6), st.sampled_from(["", "file://"]))
def test_accepted_uris_always_resolve_inside_the_root(root, parts, prefix):
    if not (root / "link").exists():
        os.symlink(root.parent, root / "link")
    uri = prefix + str(root) + "/" + "/".join(parts)
    try:
        loc = check_uri(uri, [root], [])
    except (InvalidInput, NotFound):
        return
    assert loc.local_path is not None and loc.local_path.resolve().is_relative_to(root.resolve())


def test_the_state_folder_is_not_a_dataset_root_but_its_inbox_is(tmp_path):
    from services.ingest.settings import IngestSettings

    work = tmp_path / "work"
    s = IngestSettings(state_dir=work / ".tuneline")
    for name in ("stores/ingest.db", "artifacts/blobs/x.csv", "inbox/upload.csv"):
        (s.state_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (s.state_dir / name).write_text("text,label\nhi,x\n")
    roots = [work, s.state_dir / "inbox"]  # the defaults' shape: a working folder holding the state folder
    for inside in ("stores/ingest.db", "artifacts/blobs/x.csv"):
        with pytest.raises(InvalidInput, match="which datasets may not be read from"):
            check_uri(str(s.state_dir / inside), roots, [], s.denied_data_roots())
    loc = check_uri(str(s.state_dir / "inbox" / "upload.csv"), roots, [], s.denied_data_roots())
    assert loc.local_path == (s.state_dir / "inbox" / "upload.csv").resolve()
    # A symlink from an allowed place into the state folder is judged by where it points.
    (work / "link.csv").symlink_to(s.state_dir / "stores" / "ingest.db")
    with pytest.raises(InvalidInput, match="may not be read"):
        check_uri(str(work / "link.csv"), roots, [], s.denied_data_roots())
    assert s.data_roots()[-1] == s.state_dir / "inbox" and s.denied_data_roots() == [s.state_dir]
