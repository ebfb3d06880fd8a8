"""Autosave without a window: a change is written in the background as a project file that
reads back, a live session's file is no orphan, and a normal close deletes it."""

from __future__ import annotations

import numpy as np

from editor.state import autosave, project
from editor.state.document import Document


def test_a_change_is_autosaved_and_a_close_deletes_it(qtbot):
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    saver = autosave.Autosave(doc, lambda pixels: project.capture(doc, pixels=pixels))
    saver.timer.setInterval(10)
    with qtbot.waitSignal(saver.autosaved, timeout=5000) as sig:
        doc.set_mask(np.ones((16, 16), bool), "Mask everything")
    path = saver.path
    assert sig.args == [str(path)] and project.read(path).mask.all()
    assert autosave.orphans() == [], "a live session's autosave is not an orphan"
    saver.close()
    assert not path.exists() and not path.with_suffix(".lock").exists()


def test_an_abandoned_autosave_is_an_orphan(qtbot):
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    saver = autosave.Autosave(doc, lambda pixels: project.capture(doc, pixels=pixels))
    doc.set_mask(np.ones((16, 16), bool), "Mask everything")
    saver.flush()
    saver.abandon()  # as if the process died
    assert autosave.orphans() == [saver.path]
    saver.close()
