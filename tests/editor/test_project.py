"""Project files and autosave in-process: a session survives save / reopen with its undo history,
candidates, class, sampling values, lock and keep-out; damaged files are refused with a message;
writes are atomic; an autosave appears after an edit and goes at a normal close; an orphaned one
is recovered by the next window."""

from __future__ import annotations

import contextlib
import json
import zipfile
import zlib

import numpy as np
import pytest
from fakes import make_window

from editor.state import project
from editor.ui import session


@contextlib.contextmanager
def reopened(qtbot, win, tmp_path, engine, name="work.maskgit"):
    """`win`'s session saved as a project and opened in a second window."""
    path = tmp_path / name
    assert win.session.save_project(path)
    other = make_window(qtbot, tmp_path / "b", engine)
    try:
        assert other.open_path(path), other.last_error
        yield other
    finally:
        other.close()


def states(win):
    """Every undo state of the window (walking the stack), then back to where it was."""
    stack, here, out = win.doc.undo_stack, win.doc.undo_stack.index(), []
    for i in range(stack.count() + 1):
        stack.setIndex(i)
        out.append((win.doc.image.copy(), win.doc.mask.copy(), win.doc.origin,
                    win.controller.locks.mask.copy(), win.controller.keep_out.mask.copy()))
    stack.setIndex(here)
    return out


def edit_session(qtbot, win):
    m = np.zeros(win.doc.mask.shape, bool)
    m[10:30, 12:40] = True
    win.doc.set_mask(m, "mask")
    lock = np.zeros(m.shape, bool)
    lock[0:8, 0:8] = True
    win.controller.locks.set(lock, "Lock")
    keep = np.zeros(m.shape, bool)
    keep[30:, 40:] = True
    win.controller.keep_out.set(keep)
    win.doc.extend(right=16, bottom=8)
    win.class_picker.set_class(207)
    win.sampling.steps.setValue(6)
    win.sampling.candidates.setValue(3)
    m2 = np.zeros(win.doc.mask.shape, bool)
    m2[20:30, 30:40] = True  # one window: candidates are per single-window edit
    win.doc.set_mask(m2, "mask 2")
    win.doc.set_mask(m2 & False, "clear")
    win.doc.undo_stack.undo()  # leaves a redo-able entry
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()
    win.candidate_bar.next.click()  # candidate 2 of 3 is the one shown
    assert len(win.controller.candidate.result.images) == 3, win.controller.candidate.job.candidates
    assert win.controller.candidate.index == 1


def test_project_round_trip_keeps_history_candidates_and_settings(qtbot, win, tmp_path, engine):
    edit_session(qtbot, win)
    stack = win.doc.undo_stack
    index, count = stack.index(), stack.count()
    path = tmp_path / "work.maskgit"
    h = win.step_tools.steps.history
    assert h is not None and h.candidates == 3
    assert win.session.save_project(path)
    before = states(win)  # (walking the history drops the pending candidate)
    assert not list(tmp_path.glob("*.part")), "no temporary file left behind"

    other = make_window(qtbot, tmp_path / "b", engine)
    try:
        assert other.open_path(path), other.last_error
        assert other.doc.undo_stack.count() == count and other.doc.undo_stack.index() == index
        assert not other.doc.modified, "a freshly opened project is clean"
        assert other.class_picker.class_id() == 207
        assert other.sampling.steps.value() == 6 and other.sampling.candidates.value() == 3
        c = other.controller.candidate
        assert c is not None and c.index == 1 and len(c.result.images) == 3
        assert not other.candidate_bar.isHidden()
        strip = other.step_tools.strip
        assert strip.isVisibleTo(other) and [(b, c) for b, c, _ in strip.buttons] == [
            (0, 0), (0, 1), (0, 2)]
        assert [c for b, c, btn in strip.buttons if btn.isChecked()] == [1]
        # The step history came back: scrubbing, branching and re-rolling work again.
        steps = other.step_tools.steps
        oh = steps.history
        assert oh is not None and steps.current and steps.candidate_index == 1
        assert steps.can_branch() and steps.can_reroll()
        assert [r[0].step for r in oh.steps] == [r[0].step for r in h.steps]
        for a, b in zip(h.steps, oh.steps, strict=True):
            for ra, rb in zip(a, b, strict=True):
                assert ra.rect == rb.rect and np.array_equal(ra.patch, rb.patch)
                assert np.array_equal(ra.tokens, rb.tokens)
                assert np.array_equal(ra.confidence, rb.confidence)
        assert np.array_equal(oh.pixel_mask, h.pixel_mask) and oh.window == h.window
        shown = other.doc.image.copy()
        other.candidate_bar.prev.click()  # flipping works on the restored candidates
        assert not np.array_equal(other.doc.image, shown)
        assert other.doc.undo_stack.count() == count
        other.candidate_bar.next.click()
        after = states(other)  # undo / redo through the whole restored history
        for (a, b) in zip(before, after, strict=True):
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
            assert a[2] == b[2] and np.array_equal(a[3], b[3])
        # and the app still generates
        other.doc.set_mask(np.ones(other.doc.mask.shape, bool), "all")
        with qtbot.waitSignal(other.controller.candidate_changed, timeout=5000,
                              check_params_cb=lambda i, n: n > 0):
            other.a_generate.trigger()
    finally:
        other.close()


def test_a_failed_write_leaves_the_previous_file_intact(qtbot, win, tmp_path, monkeypatch):
    path = tmp_path / "keep.maskgit"
    win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
    assert win.session.save_project(path)
    good = path.read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    win.doc.set_mask(np.zeros(win.doc.mask.shape, bool), "none")
    assert not win.session.save_project(path)
    assert win.last_error[0] == "Could not save" and "No space left" in win.last_error[1]
    assert path.read_bytes() == good and not list(tmp_path.glob("*.part"))


def _npy_object() -> bytes:
    import io

    b = io.BytesIO()
    np.lib.format.write_array(b, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return zlib.compress(b.getvalue())


def _bad_projects(tmp_path, win):
    good = tmp_path / "good.maskgit"
    assert win.session.save_project(good)
    raw = good.read_bytes()
    out = {}
    out["empty.maskgit"] = (b"", "not a readable project")
    out["truncated.maskgit"] = (raw[: len(raw) // 2], "not a readable project")
    out["text.maskgit"] = (b"hello" * 100, "not a readable project")

    def rezip(name, edit):
        p = tmp_path / "src" / name
        p.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(good) as zi, zipfile.ZipFile(p, "w") as zo:
            for info in zi.infolist():
                data = edit(info.filename, zi.read(info.filename))
                if data is not None:
                    zo.writestr(info.filename, data)
        return p.read_bytes()

    out["nomanifest.maskgit"] = (rezip("a", lambda n, d: None if n == "manifest.json" else d),
                                 "no manifest")
    out["newer.maskgit"] = (rezip("b", lambda n, d: d.replace(b'"version": 1', b'"version": 99')
                                  if n == "manifest.json" else d), "newer version")
    out["pickle.maskgit"] = (rezip("c", lambda n, d: _npy_object() if n == "a/0.npy.z" else d),
                             "Python objects")
    out["missing.maskgit"] = (rezip("d", lambda n, d: None if n == "a/1.npy.z" else d), "damaged")
    return out


def test_damaged_project_files_are_refused_and_the_app_stays_usable(qtbot, win, tmp_path):
    win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
    for name, (data, words) in _bad_projects(tmp_path, win).items():
        p = tmp_path / name
        p.write_bytes(data)
        image, entries = win.doc.image.copy(), win.doc.undo_stack.count()
        assert not win.open_path(p), name
        assert win.last_error[0] == "Could not open" and words in win.last_error[1], (
            name, win.last_error)
        assert name in win.last_error[1]
        assert np.array_equal(win.doc.image, image)
        assert win.doc.undo_stack.count() == entries
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()


def test_autosave_after_an_edit_and_gone_after_a_normal_close(qtbot, tmp_path, engine):
    win = make_window(qtbot, tmp_path, engine)
    win.session.timer.setInterval(10)
    with qtbot.waitSignal(win.session.autosaved, timeout=5000) as sig:
        win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
    path = session.autosave_dir() / sig.args[0].split("/")[-1]
    assert path.is_file() and project.read(path).mask.all()
    assert session.orphans() == [], "a live session's autosave is not an orphan"
    win.close()
    assert not path.exists() and not path.with_suffix(".lock").exists()


def test_an_orphaned_autosave_is_recovered_by_the_next_window(qtbot, tmp_path, engine,
                                                              monkeypatch):
    first = make_window(qtbot, tmp_path / "a", engine)
    m = np.zeros(first.doc.mask.shape, bool)
    m[5:25, 5:25] = True
    first.doc.set_mask(m, "mask")
    with qtbot.waitSignal(first.controller.candidate_changed, timeout=5000):
        first.a_generate.trigger()
    first.session.flush()
    image = first.doc.image.copy()
    orphan = first.session.path
    # The process "dies": its lock goes stale (QLockFile checks the pid; here we drop it).
    first.session.autosaver.abandon()
    first.session.path = tmp_path / "elsewhere.maskgit"  # its close must not delete the orphan
    first.close()
    assert session.orphans() == [orphan]

    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    second = make_window(qtbot, tmp_path / "b", engine)
    try:
        with qtbot.waitSignal(second.session.recovered, timeout=5000):
            assert second.session.offer_recovery()
        assert np.array_equal(second.doc.image, image)
        assert second.doc.undo_stack.count() == 2 and second.doc.modified
        assert not orphan.exists() and second.session.path.is_file()
    finally:
        second.close()


def test_declining_recovery_discards_the_orphan(qtbot, tmp_path, win, monkeypatch):
    orphan = session.autosave_dir() / f"session-1-dead{project.EXT}"
    st = project.capture(win.doc)
    project.write(orphan, st)
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "no")
    assert not win.session.offer_recovery()
    assert not orphan.exists()


@pytest.mark.parametrize("bad", [b"", b"PK\x03\x04garbage"])
def test_a_damaged_orphan_is_kept_aside_quietly(qtbot, tmp_path, win, bad, monkeypatch):
    orphan = session.autosave_dir() / f"session-2-dead{project.EXT}"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(bad)
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    assert not win.session.offer_recovery()
    assert not orphan.exists() and session.orphans() == []  # kept aside (issue 16)


FUZZ = {"cases": 0, "read": 0, "refused": 0}


def test_fuzz_project_reader(qtbot, win, tmp_path):
    """Mutated project files (raw bytes, and manifests inside a valid zip): ProjectError or a
    state that restores into the window; nothing else escapes."""
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from test_fuzz_images import EXAMPLES, mutated

    m = np.zeros(win.doc.mask.shape, bool)
    m[2:9, 3:7] = True
    win.doc.set_mask(m, "mask")
    win.doc.extend(left=4)
    good = tmp_path / "seed.maskgit"
    assert win.session.save_project(good)
    raw = good.read_bytes()
    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}

    def rezip(manifest: bytes) -> bytes:
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w") as z:
            for name, data in members.items():
                z.writestr(name, manifest if name == "manifest.json" else data)
        return b.getvalue()

    manifest = json.loads(members["manifest.json"])

    @st.composite
    def json_edit(draw: st.DrawFn) -> bytes:
        """One value somewhere in the manifest replaced by another JSON value."""
        doc = json.loads(json.dumps(manifest))
        for _ in range(draw(st.integers(1, 3))):
            node, key, target = doc, None, None
            while True:
                keys = list(node) if isinstance(node, dict) else list(range(len(node)))
                if not keys:
                    break
                key = draw(st.sampled_from(keys))
                target = node
                child = node[key]
                if not isinstance(child, dict | list) or draw(st.booleans()):
                    break
                node = child
            if target is not None:
                target[key] = draw(st.one_of(
                    st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(),
                    st.text(max_size=8), st.lists(st.integers(-5, 100), max_size=4),
                    st.sampled_from([{"$npy": "a/0.npy.z"}, {"$npy": "a/3.npy.z"}, {"$npy": "x"},
                                     {"$npy": None}, {}])))
        return rezip(json.dumps(doc).encode())

    path = tmp_path / "fuzz.maskgit"

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(mutated(raw), mutated(members["manifest.json"]).map(rezip), json_edit()))
    def run(data: bytes) -> None:
        FUZZ["cases"] += 1
        path.write_bytes(data)
        try:
            state = project.read(path)
        except project.ProjectError as e:
            assert "fuzz.maskgit" in str(e)
            FUZZ["refused"] += 1
            return
        FUZZ["read"] += 1
        project.restore(state, win.doc, win.controller)
        assert win.doc.image.shape[:2] == win.doc.mask.shape
        win.doc.export_rgba()

    run()
    print(f"\nproject reader fuzz: {FUZZ['cases']} cases, {FUZZ['read']} read, "
          f"{FUZZ['refused']} refused with a message")


def test_every_autosave_holds_exactly_the_document(qtbot, tmp_path, engine):
    """Autosave copies only what changed since the last one; after each kind of change the file
    must still equal the document."""
    win = make_window(qtbot, tmp_path, engine)
    s = win.session
    try:
        def check():
            s._dirty = True
            s.flush()
            st = project.read(s.path)
            assert np.array_equal(st.image, win.doc.image)
            assert np.array_equal(st.mask, win.doc.mask)

        m = np.zeros(win.doc.mask.shape, bool)
        m[4:20, 6:30] = True
        win.doc.set_mask(m, "mask")
        check()
        with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
            win.a_generate.trigger()
        check()
        win.doc.set_mask(m, "mask again")
        check()
        win.doc.undo_stack.undo()
        win.doc.undo_stack.undo()
        check()
        win.doc.extend(left=8, bottom=4)
        check()
        win.doc.undo_stack.undo()
        check()
        buf = win.doc.begin_stroke()  # a brush stroke draws into the mask in place
        buf[30:40, 40:50] = True
        win.doc.stroke_updated((40, 30, 50, 40))
        win.doc.end_stroke("Paint mask")
        check()
    finally:
        win.close()


def test_a_saved_or_opened_project_is_what_ctrl_s_saves(qtbot, win, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(photo)
    assert win.open_path(photo)
    photo_bytes = photo.read_bytes()
    win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "mask")
    path = tmp_path / "work.maskgit"
    assert win.session.save_project(path)
    assert not win.doc.modified and "work.maskgit" in win.windowTitle()

    assert win.open_path(path)
    assert "work.maskgit" in win.windowTitle() and win.doc.path == photo
    win.doc.set_mask(np.zeros(win.doc.mask.shape, bool), "clear")
    assert win.doc.modified
    assert win.save()  # Ctrl+S: into the project, never over the photo
    assert photo.read_bytes() == photo_bytes
    assert not project.read(path).mask.any() and not win.doc.modified

    # Saving as an image while a project is open exports it: the project stays what Ctrl+S
    # saves, and unsaved work stays unsaved.
    win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "mask")
    out = tmp_path / "out.png"
    assert win.save_to(out) and out.is_file()
    assert win.session.project_path == path and win.doc.modified
    assert win.save() and project.read(path).mask.all() and not win.doc.modified
    # Opening an image makes the document that image: Ctrl+S then writes the image.
    assert win.open_path(out)
    assert win.session.project_path is None and "out.png" in win.windowTitle()
    before = path.read_bytes()
    win.doc.set_mask(np.zeros(win.doc.mask.shape, bool), "clear")
    assert win.save()
    assert path.read_bytes() == before


def test_a_multi_window_step_history_comes_back_window_by_window(qtbot, win, tmp_path, engine):
    m = np.zeros(win.doc.mask.shape, bool)
    m[:4, :4] = m[-4:, -4:] = True  # two windows
    win.doc.set_mask(m, "two holes")
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.a_generate.trigger()
    steps = win.step_tools.steps
    assert len(steps.chain) == 2
    steps.select_window(0)
    with reopened(qtbot, win, tmp_path, engine) as other:
        back = other.step_tools.steps
        assert len(back.chain) == 2 and back.window_index == 0 and back.current
        for a, b in zip(steps.chain, back.chain, strict=True):
            assert a.window == b.window and np.array_equal(a.pixel_mask, b.pixel_mask)
            assert np.array_equal(a.last().tokens, b.last().tokens)
        assert other.step_tools.scrubber.window_box.value() == 1


def test_a_decode_under_later_edits_keeps_its_history_in_the_project(qtbot, win, tmp_path, engine):
    m = np.zeros(win.doc.mask.shape, bool)
    m[10:26, 10:26] = True
    win.doc.set_mask(m, "mask")
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.a_generate.trigger()
    h = win.step_tools.steps.history
    win.doc.set_mask(~m, "a stroke after it")
    assert not win.step_tools.steps.current
    with reopened(qtbot, win, tmp_path, engine) as other:
        steps = other.step_tools.steps
        assert steps.history is not None and not steps.current
        other.doc.undo_stack.undo()  # back to the decode's result: its tools work again
        assert steps.current and steps.can_reroll()
        assert np.array_equal(steps.history.last().tokens, h.last().tokens)


def test_a_save_during_a_decode_keeps_the_last_decodes_history(qtbot, tmp_path):
    from fakes import FakeEngine

    gated = FakeEngine(gated=True)
    win = make_window(qtbot, tmp_path, gated)
    try:
        m = np.zeros(win.doc.mask.shape, bool)
        m[10:26, 10:26] = True
        win.doc.set_mask(m, "mask")
        s = win.controller.sampling
        gated.release(s.steps - s.start_step)
        with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
            win.a_generate.trigger()
        win.doc.set_mask(m, "mask again")
        win.a_generate.trigger()  # runs until the test lets it go
        assert win.controller.busy
        st = project.capture(win.doc, win.controller, steps=win.step_tools.steps)
        assert st.steps is not None and len(st.steps["chain"]) == 1
    finally:
        gated.open()
        win.close()
