"""Drive the real app through an inpaint and save a screenshot (not collected by pytest).

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 .venv/bin/python tests/editor/make_screenshot.py PHOTO OUT.png [MODEL] [CLASS]
        [--stroke=x,y;x,y;...]   (fractions of the image size; the brush path) [--brush=PX]
        [--extend=right:96,top:32]   (outpaint instead of a stroke)
        [--keep-out=x0,y0,x1,y1]   (first: the object in this box, fractions of the image
                                    size, selected with GrabCut and kept out of fills)

Opens PHOTO, paints a mask with the brush tool over a region, runs Generate with MODEL
('default' when its file exists, else 'tiny' random weights), waits for the result, and grabs
the main window.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QPointF, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from editor.state.worker import Worker, WorkerThread
from editor.ui.main_window import MainWindow


def wait(signal, ms: int = 120_000) -> list:
    loop, got = QEventLoop(), []

    def on(*a):
        got.append(a)
        loop.quit()

    signal.connect(on)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    signal.disconnect(on)
    return got


def open_app(photo: Path, model: str, ini: str) -> MainWindow | None:
    """The real main window at screenshot size, `model` loaded and `photo` open and fitted."""
    win = MainWindow(WorkerThread(Worker()), QSettings(ini, QSettings.Format.IniFormat),
                     confirm=False)
    win.resize(1360, 860)
    win.show()
    win.sampling.select_model(model)
    win.controller.load_model(model)
    if not win.controller.ready:
        wait(win.controller.model_changed)
    win.sampling.model_status.setText(
        f"{model}: {win.controller.window_px} px window, {win.controller.tokens}×"
        f"{win.controller.tokens} tokens")
    if not win.open_path(photo):
        print(win.last_error)
        return None
    QApplication.processEvents()
    win.canvas.fit()
    return win


def main() -> int:
    argv = [a for a in sys.argv if not a.startswith("--")]
    photo, out = Path(argv[1]), Path(argv[2])
    from models.registry import DEFAULT_MODEL

    model = argv[3] if len(argv) > 3 else ("default" if DEFAULT_MODEL.is_file() else "tiny")
    _app = QApplication.instance() or QApplication([])  # must outlive the window
    win = open_app(photo, model, "/tmp/screenshot.ini")
    if win is None:
        return 1
    # A brush stroke across the subject, as a person would paint it.
    brush = win.tools["brush"]
    win.set_tool("brush")
    size = next((a[8:] for a in sys.argv if a.startswith("--brush=")), "")
    win.brush_size.setValue(int(size) if size else max(16, win.doc.width // 14))
    h, w = win.doc.height, win.doc.width
    stroke = next((a[9:] for a in sys.argv if a.startswith("--stroke=")),
                  "0.36,0.42;0.5,0.36;0.6,0.45;0.52,0.55")
    pts = [(float(x) * w, float(y) * h) for x, y in (p.split(",") for p in stroke.split(";"))]
    win.class_picker.set_class(int(argv[4]) if len(argv) > 4 else None)
    win.sampling.random_seed.setChecked(False)
    win.sampling.seed.setValue(3)
    keep_box = next((a[11:] for a in sys.argv if a.startswith("--keep-out=")), "")
    if keep_box:  # Select object (O) around the subject, then Edit > Keep the mask out
        from editor.core.selection import grabcut

        x0, y0, x1, y1 = (float(v) for v in keep_box.split(","))
        win.doc.set_mask(grabcut(win.doc.image, (round(x0 * w), round(y0 * h), round(x1 * w),
                                                 round(y1 * h))), "Select object")
        win.a_keep_out.trigger()
    extend = next((a[9:] for a in sys.argv if a.startswith("--extend=")), "")
    if extend:  # outpaint: what releasing a dragged edge does
        sides = dict(left=0, top=0, right=0, bottom=0)
        for part in extend.split(","):
            side, px = part.split(":")
            sides[side] = int(px)
        win.controller.extend(**sides)
        QTimer.singleShot(0, win.canvas.fit)
    else:
        brush.press(win.doc, QPointF(*pts[0]))
        for p in pts[1:]:
            brush.move(QPointF(*p))
        brush.release(QPointF(*pts[-1]))
        win.generate()
    got = wait(win.controller.candidate_changed)
    if win.last_error:
        print("error:", win.last_error)
        return 1
    print("candidate:", got)
    settle = QEventLoop()
    QTimer.singleShot(300, settle.quit)  # the token grid re-plans on a short timer
    settle.exec()
    win.grab().save(str(out))
    print(f"saved {out} ({model})")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
