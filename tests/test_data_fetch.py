"""The data root, the catalogue and `xfer data fetch / list`, from local sources the tests build themselves."""
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import DATA, ROOT
from xfer.cli import main
from xfer.config import ConfigError
from xfer.data.root import absolutize, resolve_path
from xfer.data import catalog
from xfer.data.catalog import CATALOG, DatasetSource
from xfer.datacli import datasets_for_study
from xfer.data.fetch import MANIFEST, check_dataset, fetch_dataset, without_rows_of
from xfer.data.root import DATA_ENV, data_root, user_data_root
from xfer.load import load_study


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_folder(folder: Path) -> str:
    """Make `folder` a git repository with one commit of everything in it; its commit id."""
    git("init", "-q", cwd=folder)
    git("add", ".", cwd=folder)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "data", cwd=folder)
    return git("rev-parse", "HEAD", cwd=folder)


def write_image(path: Path, size, mode="L", seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


@pytest.fixture
def xray_repo(tmp_path):
    """A repository like Actualmed's: images/ (one big, one over the size limit) and metadata.csv naming them."""
    repo = tmp_path / "upstream"
    write_image(repo / "images" / "a.png", (800, 600))
    write_image(repo / "images" / "b.png", (64, 48), "RGB", seed=1)
    write_image(repo / "images" / "huge.png", (1000, 1000), seed=2)
    (repo / "metadata.csv").write_text('patientid,finding,imagename,notes\r\n'
                                       'P1,COVID-19,a.png,"x, y"\r\nP2,No finding,b.png,\r\nP3,COVID-19,huge.png,\r\n')
    (repo / "README.md").write_text("not part of the dataset\n")
    return repo, commit_folder(repo)


def xray_entry(repo: Path, commit: str, **changes) -> DatasetSource:
    fields = dict(name="toy-xray", what="toy", origin=repo.as_uri(), commit=commit[:7],
                  paths=(("images", "images"), ("metadata.csv", "metadata.csv")), licence="test", files=3,
                  metadata="metadata.csv", metadata_sha256="", prepare="shrink_512", max_file_bytes=700_000,
                  file_column="imagename")
    return DatasetSource(**(fields | changes))


def test_fetch_from_git_checks_out_the_pinned_commit_and_prepares_it(xray_repo, tmp_path):
    repo, commit = xray_repo
    (repo / "images" / "late.png").write_bytes(b"added after the pinned commit")
    commit_folder(repo)
    state = fetch_dataset(xray_entry(repo, commit), tmp_path / "root")
    folder = tmp_path / "root" / "toy-xray"
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [MANIFEST, "a.png", "b.png", "metadata.csv"]
    assert Image.open(folder / "images" / "a.png").size == (512, 384)  # longer side shrunk to 512
    assert (folder / "images" / "b.png").read_bytes() == (repo / "images" / "b.png").read_bytes()
    assert (folder / "metadata.csv").read_bytes() == (b'patientid,finding,imagename,notes\r\n'
                                                      b'P1,COVID-19,a.png,"x, y"\r\nP2,No finding,b.png,\r\n')
    assert state.files == 3 and not state.metadata_ok  # the toy entry pins no checksum


def test_fetched_actualmed_matches_the_catalogue_checksum(tmp_path):
    upstream = tmp_path / "actualmed"
    shutil.copytree(DATA / "covid-actualmed", upstream)
    entry = dataclasses.replace(CATALOG["covid-actualmed"], origin=str(upstream), commit=commit_folder(upstream))
    state = fetch_dataset(entry, tmp_path / "root")
    assert state.state == "present", state.problems
    assert not (tmp_path / "root" / ".xfer-fetch" / "covid-actualmed").exists()  # staging removed once verified


def zipped_folder_entry(tmp_path) -> DatasetSource:
    source = tmp_path / "src" / "set"
    for i, cls in enumerate(["normal", "covid"]):
        write_image(source / "train" / cls / f"{i}.png", (40, 30), seed=i)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(source.rglob("*.png")):
            z.write(f, f.relative_to(source.parent).as_posix())
    listing = hashlib.sha256(b"train/covid/1.png\ntrain/normal/0.png\n").hexdigest()
    return DatasetSource(name="toy-folders", what="toy", origin=archive.as_uri(), commit=None,
                         paths=(("set", ""),), licence="test", files=2, metadata=None, metadata_sha256=listing,
                         source_sha256=hashlib.sha256(archive.read_bytes()).hexdigest())


def test_archive_download_resumes_from_its_partial_file(tmp_path):
    entry = zipped_folder_entry(tmp_path)
    archive = Path(entry.origin.removeprefix("file://"))
    partial = tmp_path / "root" / ".xfer-fetch" / "toy-folders" / "download" / "set.zip.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(archive.read_bytes()[:100])
    assert fetch_dataset(entry, tmp_path / "root").state == "present"


def test_verification_catches_truncated_and_corrupted_files_and_fetch_repairs_them(tmp_path):
    entry = zipped_folder_entry(tmp_path)
    root = tmp_path / "root"
    fetch_dataset(entry, root)
    image = root / "toy-folders" / "train" / "covid" / "1.png"
    good = image.read_bytes()
    image.write_bytes(good[:-10])
    assert "truncated" in check_dataset(entry, root).problems[0]
    image.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert check_dataset(entry, root).state == "present"  # same size: only the deep check reads contents
    assert "corrupted" in check_dataset(entry, root, deep=True).problems[0]
    assert fetch_dataset(entry, root).state == "present" and image.read_bytes() == good


def test_a_wrong_download_checksum_is_an_error_and_leaves_no_file(tmp_path):
    entry = dataclasses.replace(zipped_folder_entry(tmp_path), source_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        fetch_dataset(entry, tmp_path / "root")
    assert not list((tmp_path / "root" / ".xfer-fetch").rglob("set.zip*"))


def test_metadata_rows_of_left_out_files_are_dropped_byte_for_byte(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_bytes(b'id,file\n1,a.png\n2,"b.png"\n3,"multi\nline"\n')
    assert without_rows_of(csv, "file", {"b.png"}) == 'id,file\n1,a.png\n3,"multi\nline"\n'


def test_data_list_reports_present_missing_and_incomplete(tmp_path, monkeypatch, capsys):
    entry = zipped_folder_entry(tmp_path)
    root = tmp_path / "root"
    fetch_dataset(entry, root)
    broken = dataclasses.replace(entry, name="toy-broken")
    shutil.copytree(root / "toy-folders", root / "toy-broken")
    (root / "toy-broken" / "train" / "normal" / "0.png").unlink()
    missing = dataclasses.replace(entry, name="toy-missing")
    monkeypatch.setattr(catalog, "CATALOG", {e.name: e for e in (entry, broken, missing)})
    monkeypatch.setattr("xfer.datacli.CATALOG", catalog.CATALOG)
    assert main(["data", "list", "--data-root", str(root)]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["toy-folders"].startswith("present") and "2/2" in lines["toy-folders"]
    assert lines["toy-broken"].startswith("incomplete") and "train/normal/0.png: missing" in lines["toy-broken"]
    assert lines["toy-missing"].startswith("missing")


def test_the_shared_folder_is_the_default_data_root_here_and_a_user_folder_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_root() == Path("../shared/data") and check_dataset(CATALOG["covid-actualmed"], data_root()).state == "present"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == user_data_root() == tmp_path / "cache" / "xfer" / "data"


def test_a_study_reads_its_data_through_xfer_data(tmp_path, monkeypatch):
    upstream = tmp_path / "actualmed"
    shutil.copytree(DATA / "covid-actualmed", upstream)
    entry = dataclasses.replace(CATALOG["covid-actualmed"], origin=str(upstream), commit=commit_folder(upstream))
    fetch_dataset(entry, tmp_path / "root")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "root"))
    study = load_study(ROOT / "experiments" / "smoke.yaml")
    assert Path(absolutize(study.data, ROOT / "experiments").datasets[0].root) == tmp_path / "root" / "covid-actualmed"


def test_a_missing_dataset_fails_before_any_trial_naming_it_the_paths_and_the_fetch_command(tmp_path, monkeypatch):
    study = (ROOT / "experiments" / "smoke.yaml").read_text().replace("../shared/data/covid-actualmed",
                                                                      "../data/covid-actualmed")
    (tmp_path / "smoke.yaml").write_text(study)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty-root"))
    with pytest.raises(ConfigError) as error:
        load_study(tmp_path / "smoke.yaml")
    message = str(error.value)
    assert "covid-actualmed" in message and str(tmp_path / "empty-root" / "covid-actualmed") in message
    assert "xfer data fetch covid-actualmed" in message


def test_paths_as_written_still_resolve_without_configuration(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert resolve_path("../shared/data/covid-actualmed", ROOT) == Path("../shared/data/covid-actualmed")


def test_fetch_for_a_study_names_its_datasets_and_its_stages_datasets():
    assert datasets_for_study(ROOT / "experiments" / "smoke.yaml") == ["covid-actualmed", "cifar10-subset"]


@pytest.mark.slow
def test_smoke_study_runs_on_a_data_root_holding_only_fetched_copies(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for name in datasets_for_study(ROOT / "experiments" / "smoke.yaml"):
        upstream = tmp_path / "upstream" / name
        shutil.copytree(DATA / name, upstream)
        entry = dataclasses.replace(CATALOG[name], origin=upstream.as_uri(), commit=commit_folder(upstream))
        monkeypatch.setitem(CATALOG, name, entry)
    assert main(["data", "fetch", "--for", str(ROOT / "experiments" / "smoke.yaml"), "--data-root", str(root)]) == 0
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["cifar10-subset", "covid-actualmed"]
    study = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    study["data"]["datasets"][0]["root"] = "../nowhere/covid-actualmed"  # found only through XFER_DATA
    study |= {"output_dir": str(tmp_path / "out")}
    study["data"]["cache_dir"] = str(tmp_path / "cache")
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(study))
    env = {**os.environ, DATA_ENV: str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "xfer.run", str(tmp_path / "smoke.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
