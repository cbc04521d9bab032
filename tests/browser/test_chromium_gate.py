"""Without Chromium the browser tests skip on a developer's machine and fail in CI."""

from __future__ import annotations

import pytest

from tests.browser import conftest


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(conftest.shutil, "which", lambda path: None)
    return monkeypatch


def test_skipped_outside_ci(no_chromium: pytest.MonkeyPatch) -> None:
    no_chromium.delenv("CI", raising=False)
    with pytest.raises(BaseException) as outcome:  # skip and fail are BaseExceptions
        conftest._need_chromium()
    assert outcome.type is pytest.skip.Exception
    assert "chromium-driver" in str(outcome.value)


def test_fails_in_ci(no_chromium: pytest.MonkeyPatch) -> None:
    no_chromium.setenv("CI", "true")
    with pytest.raises(BaseException) as outcome:
        conftest._need_chromium()
    assert outcome.type is pytest.fail.Exception
    assert "CI must run the browser tests" in str(outcome.value)


def test_runs_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest.shutil, "which", lambda path: path)
    monkeypatch.setenv("CI", "true")
    conftest._need_chromium()
