"""Manifest and index validation: hostile paths refused, hashes and sizes checked."""

from __future__ import annotations

import json

import pytest

from lstm_zoo.hub.manifest import (
    MANIFEST_FORMAT,
    HubError,
    IntegrityError,
    build_index,
    check_version,
    file_table,
    parse_index,
    parse_manifest,
    resolve_version,
    safe_relative_path,
    verify_version_dir,
)


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\b", "C:/x", "", "a/."]
)
def test_paths_that_escape_their_folder_are_refused(path):
    with pytest.raises(HubError, match="escapes its folder|non-empty"):
        safe_relative_path(path, "test")


def test_ordinary_relative_paths_pass():
    assert str(safe_relative_path("variables/variables.index", "t")) == "variables/variables.index"


@pytest.mark.parametrize("bad", ["0", "-1", "latest", "1.0", "01a", ""])
def test_versions_must_be_positive_integers(bad):
    with pytest.raises(HubError):
        check_version(bad)


def _manifest(files):
    return json.dumps({"format": MANIFEST_FORMAT, "name": "m", "version": "1",
                       "files": files}).encode()


def test_manifest_with_escaping_file_is_refused():
    files = {"../../outside.txt": {"sha256": "0" * 64, "size": 1}}
    with pytest.raises(HubError, match="escapes its folder"):
        parse_manifest(_manifest(files), "hostile")


def test_manifest_entries_need_hash_and_size():
    with pytest.raises(HubError, match="sha256"):
        parse_manifest(_manifest({"a": {"sha256": "xyz", "size": 1}}), "m")
    with pytest.raises(HubError, match="not valid JSON"):
        parse_manifest(b"{not json", "m")


def test_verify_detects_size_hash_missing_and_unlisted(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"hello")
    manifest = {"files": file_table(tmp_path)}
    verify_version_dir(tmp_path, manifest)  # intact
    (tmp_path / "a.bin").write_bytes(b"hellp")  # same size, one byte changed
    with pytest.raises(IntegrityError, match="sha256"):
        verify_version_dir(tmp_path, manifest)
    (tmp_path / "a.bin").write_bytes(b"hello!")
    with pytest.raises(IntegrityError, match="size"):
        verify_version_dir(tmp_path, manifest)
    (tmp_path / "a.bin").write_bytes(b"hello")
    (tmp_path / "b.bin").write_bytes(b"uninvited")
    with pytest.raises(IntegrityError, match="not listed"):
        verify_version_dir(tmp_path, manifest)
    (tmp_path / "b.bin").unlink()
    (tmp_path / "a.bin").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        verify_version_dir(tmp_path, manifest)


def test_index_round_trip_and_version_resolution(published_hub):
    index = build_index(published_hub)
    assert index == json.loads((published_hub / "index.json").read_text())
    parse_index(json.dumps(index).encode(), "index")
    assert resolve_version(index, "tiny") == "2"
    assert resolve_version(index, "tiny", 1) == "1"
    with pytest.raises(HubError, match="no version 7; published: 1, 2"):
        resolve_version(index, "tiny", "7")
    with pytest.raises(HubError, match="no pretrained model 'nope'.*tiny"):
        resolve_version(index, "nope")


def test_index_whose_manifest_path_points_elsewhere_is_refused(published_hub):
    index = build_index(published_hub)
    index["models"]["tiny"]["versions"]["1"]["manifest"] = "../../etc/manifest.json"
    with pytest.raises(HubError, match="must name its manifest"):
        parse_index(json.dumps(index).encode(), "hostile index")
