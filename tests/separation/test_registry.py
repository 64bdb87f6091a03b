"""The separator table: names, what each needs, and the errors a user sees."""
import pytest

from svc_core.errors import OptionError, SvcError
from svc_core.separation import get_separator, list_separators, separator_entry, separator_status
from svc_core.separation.registry import MODELS_DIR_ENV, models_dir


def test_every_entry_is_described_and_checked():
    status = separator_status()
    assert set(status) == set(list_separators()) >= {"starter", "repet-sim", "hpss", "mdx", "demucs", "roformer"}
    for name in list_separators():
        entry = separator_entry(name)
        assert entry.label and entry.description and entry.kind in ("network", "dsp", "community")
        assert (entry.kind == "community") == bool(entry.file_suffixes)
        assert status[name] is None or isinstance(status[name], str)


def test_unknown_name_lists_the_choices():
    with pytest.raises(OptionError, match="Unknown separator 'uvr5'.*starter.*hpss"):
        get_separator("uvr5")


def test_community_family_without_a_file_says_where_to_put_one(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    assert models_dir() == tmp_path
    for name in list_separators():
        if separator_entry(name).kind == "community" and separator_status()[name] is None:
            with pytest.raises(OptionError, match=f"needs a model file.*{tmp_path}"):
                get_separator(name)


def test_built_in_separators_take_no_file(tmp_path):
    for name in list_separators():
        if separator_entry(name).kind != "community" and separator_status()[name] is None:
            with pytest.raises(SvcError, match="takes no model file"):
                get_separator(name, tmp_path / "x.onnx")
