from __future__ import annotations

import pytest
from fakes import FakeEngine, make_window


@pytest.fixture(scope="session", autouse=True)
def _usable_qt_binding():
    from editor.app import qt_binding_problem

    problem = qt_binding_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Autosaves go to the test's folder, never to the user's data dir."""
    monkeypatch.setenv("MASKGIT_EDITOR_DATA", str(tmp_path / "data"))


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def win(qtbot, tmp_path, engine):
    w = make_window(qtbot, tmp_path, engine)
    yield w
    engine.open()  # no worker step may stay blocked on the gate
    w.close()
