"""The dataset archive checks of training jobs (svc_core.jobs.train_dataset) on zips made here: what is refused
with which error, and what a good archive unpacks to."""
from __future__ import annotations

import zipfile

import pytest

from svc_core.errors import AudioError, FileLimitError, UnsafeFileError
from svc_core.jobs.errors import error_code
from svc_core.jobs.train_dataset import DatasetError, DatasetLimits, check_dataset_zip, extract_dataset
from train_job_factories import CLIP_SECONDS, make_dataset, wav_bytes

GOOD = wav_bytes(CLIP_SECONDS, 3)


@pytest.mark.parametrize("name, error", [
    ("/abs/clip.wav", UnsafeFileError), ("alto/../../clip.wav", UnsafeFileError), ("alto\\clip.wav", UnsafeFileError),
    ("C:/alto/clip.wav", UnsafeFileError), ("clip.wav", DatasetError),
    ("a/b/clip.wav", DatasetError), ("alto/clip.exe", AudioError), ("bad name!/clip.wav", DatasetError)])
def test_member_names_are_checked(tmp_path, name, error):
    archive = make_dataset(tmp_path / "d.zip", {"bass/ok.wav": GOOD, name: GOOD})
    with pytest.raises(error):
        check_dataset_zip(archive)


def test_codes_of_the_dataset_errors():
    assert error_code(DatasetError("x")) == "invalid_dataset"
    assert error_code(UnsafeFileError("x")) == "unsafe_file"
    assert error_code(FileLimitError("x")) == "file_too_large"


def test_file_count_and_unpacked_size_are_bounded(tmp_path):
    archive = make_dataset(tmp_path / "d.zip", {f"alto/c{i}.wav": GOOD for i in range(4)})
    with pytest.raises(FileLimitError):
        check_dataset_zip(archive, DatasetLimits(max_files=3))
    with pytest.raises(FileLimitError):
        check_dataset_zip(archive, DatasetLimits(max_unpacked_bytes=3 * len(GOOD)))
    assert check_dataset_zip(archive, DatasetLimits(max_files=4, max_unpacked_bytes=4 * len(GOOD))).files == 4


def test_not_a_zip_and_finder_files(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DatasetError):
        check_dataset_zip(junk)
    archive = make_dataset(tmp_path / "mac.zip", {"alto/c.wav": GOOD, "__MACOSX/alto/._c.wav": b"x",
                                                  "alto/.DS_Store": b"x"})
    assert check_dataset_zip(archive).speakers == {"alto": ["alto/c.wav"]}


def test_extract_unpacks_reads_and_wants_enough_audio(tmp_path):
    archive = make_dataset(tmp_path / "d.zip")
    summary = extract_dataset(archive, tmp_path / "out")
    assert summary.files == 6 and summary.seconds == pytest.approx(6 * CLIP_SECONDS, abs=0.01)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav"))[0] \
        == "alto/clip0.wav"
    with pytest.raises(DatasetError, match="at least"):
        extract_dataset(archive, tmp_path / "out2", DatasetLimits(min_total_seconds=60))
    assert not (tmp_path / "out2").exists()
    fake = make_dataset(tmp_path / "fake.zip", {"alto/a.wav": GOOD, "alto/b.flac": b"fLaC but not really"})
    with pytest.raises(AudioError):
        extract_dataset(fake, tmp_path / "out3")
    assert not (tmp_path / "out3").exists()


def test_encrypted_members_are_refused(tmp_path):
    archive = make_dataset(tmp_path / "d.zip", {"alto/a.wav": GOOD})
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general purpose flag bit 0 of the central directory record: encrypted
    archive.write_bytes(bytes(data))
    assert info.filename == "alto/a.wav"
    with pytest.raises(DatasetError, match="encrypted"):
        check_dataset_zip(archive)
