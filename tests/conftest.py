"""Shared fixtures: every test session gets its own cache folder, so tests never read or write the
user's cache and a cache hit in one test is a file another test of this session wrote."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("distill-gym-cache")
    mp.setenv("DISTILL_GYM_CACHE", str(root))
    mp.setenv("DISTILL_GYM_DATA", str(root / "data"))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def digits():
    from distill_core.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def digits_teacher(digits):
    from distill_core.teachers import get_teacher

    return get_teacher("digits", data=digits, device="cpu", progress=False)
