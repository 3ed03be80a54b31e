"""Profiles (smoke / quick / full) and the session that setup() starts."""

from __future__ import annotations

from pathlib import Path

import pytest

import helpers
from helpers import profiles, session
from helpers.profiles import PROFILES, Profile, get_profile


def test_three_profiles_grow_from_smoke_to_full():
    assert list(PROFILES) == ["smoke", "quick", "full"]
    smoke, quick, full = (PROFILES[n] for n in ("smoke", "quick", "full"))
    assert smoke.train_per_class < quick.train_per_class and full.train_per_class is None
    assert smoke.test_per_class < quick.test_per_class and full.test_per_class is None
    assert smoke.max_epochs < quick.max_epochs and full.max_epochs is None
    assert smoke.image_size < quick.image_size < full.image_size == 224
    assert not smoke.requires_pretrained
    assert quick.requires_pretrained and full.requires_pretrained


@pytest.mark.parametrize("name", ["smoke", "quick", "full", " Quick ", "FULL"])
def test_get_profile_by_name(name):
    prof = get_profile(name)
    assert isinstance(prof, Profile)
    assert prof.name == name.strip().lower()


def test_get_profile_passes_a_profile_through():
    assert get_profile(PROFILES["full"]) is PROFILES["full"]


def test_env_var_selects_the_profile(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "full")
    assert get_profile().name == "full"
    assert get_profile(None).name == "full"
    assert get_profile("").name == "full"
    # an explicit name wins over the environment
    assert get_profile("smoke").name == "smoke"


def test_default_is_quick_without_env(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    assert get_profile().name == "quick"


@pytest.mark.parametrize("bad", ["fast", "smoke-test", "medium"])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(ValueError) as err:
        get_profile(bad)
    msg = str(err.value)
    assert repr(bad) in msg
    for valid in ("smoke", "quick", "full"):
        assert valid in msg


def test_unknown_env_value_names_the_env_var(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "turbo")
    with pytest.raises(ValueError, match=r"'turbo'.*\$SUITE_PROFILE.*smoke, quick, full"):
        get_profile()


def test_epochs_caps_by_profile():
    assert PROFILES["smoke"].epochs(30) == 1
    assert PROFILES["quick"].epochs(30) == 10
    assert PROFILES["quick"].epochs(4) == 4
    assert PROFILES["full"].epochs(30) == 30
    with pytest.raises(ValueError, match="at least 1, got 0"):
        PROFILES["full"].epochs(0)


def test_pick_returns_this_profiles_value():
    for name, expected in (("smoke", 1), ("quick", 8), ("full", 60)):
        assert PROFILES[name].pick(smoke=1, quick=8, full=60) == expected


def test_pick_needs_every_profile():
    with pytest.raises(ValueError, match="missing: full, quick"):
        PROFILES["smoke"].pick(smoke=1)


def test_profiles_are_frozen():
    with pytest.raises(AttributeError):
        PROFILES["smoke"].max_epochs = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- session


def test_project_root_and_data_dir_follow_env(suite_root, tmp_path, monkeypatch):
    assert session.project_root() == suite_root.resolve()
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert session.data_dir() == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("SUITE_DATA_DIR", raising=False)
    assert session.data_dir() == suite_root.resolve() / "data"


def test_project_root_finds_the_repository_without_env(monkeypatch):
    monkeypatch.delenv("SUITE_ROOT")
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo / "tests")
    assert session.project_root() == repo


def test_current_defaults_to_a_scratch_session_in_the_env_profile():
    sess = session.current()
    assert sess.notebook == "scratch"
    assert sess.profile.name == "smoke"  # the fixture sets SUITE_PROFILE=smoke


def test_setup_sets_the_current_session_and_folders(suite_root, capsys):
    sess = helpers.setup("05_vgg", profile="quick", seed=3, force_retrain=True)
    assert session.current() is sess
    assert (sess.notebook, sess.profile.name, sess.seed, sess.force_retrain) == (
        "05_vgg",
        "quick",
        3,
        True,
    )
    root = suite_root.resolve()
    assert sess.figures_dir == root / "figures" / "05_vgg"
    assert sess.results_dir == root / "results" / "quick" / "05_vgg"
    assert sess.logs_dir == root / "logs" / "quick" / "05_vgg"
    assert sess.checkpoints_dir == root / "checkpoints" / "quick" / "05_vgg"
    out = capsys.readouterr().out
    assert "profile: quick" in out and "keras backend:" in out and "data folder:" in out


def test_setup_rejects_an_unknown_profile():
    with pytest.raises(ValueError, match="valid profiles"):
        helpers.setup("x", profile="huge", verbose=False)
