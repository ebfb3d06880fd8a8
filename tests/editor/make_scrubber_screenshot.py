"""Drive the real app through an inpaint with 4 candidates, then scrub back to a middle step with
the confidence heatmap on, and save a screenshot (not collected by pytest).

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 .venv/bin/python tests/editor/make_scrubber_screenshot.py PHOTO OUT.png
        [--stroke=x,y;x,y;...] [--brush=PX] [--step=K] [--lock=x,y;x,y]

The stroke and the lock stroke are fractions of the image size.
"""

from __future__ import annotations

import sys
from pathlib import Path

from make_screenshot import open_app, wait
from PySide6.QtCore import QEventLoop, QPointF, QTimer
from PySide6.QtWidgets import QApplication

from editor.ui.main_window import MainWindow


def opt(name: str, default: str) -> str:
    return next((a[len(name) + 3 :] for a in sys.argv if a.startswith(f"--{name}=")), default)


def stroke(win: MainWindow, tool: str, spec: str) -> None:
    h, w = win.doc.height, win.doc.width
    pts = [QPointF(float(x) * w, float(y) * h) for x, y in (p.split(",") for p in spec.split(";"))]
    win.set_tool(tool)
    t = win.tools[tool]
    t.press(win.doc, pts[0])
    for p in pts[1:]:
        t.move(p)
    t.release(pts[-1])


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> int:
    argv = [a for a in sys.argv if not a.startswith("--")]
    photo, out = Path(argv[1]), Path(argv[2])
    _app = QApplication.instance() or QApplication([])  # must outlive the window
    win = open_app(photo, "default", "/tmp/scrubber-shot.ini")
    if win is None:
        return 1
    win.brush_size.setValue(int(opt("brush", "40")))
    lock = opt("lock", "")
    if lock:
        stroke(win, "lock", lock)
    stroke(win, "brush", opt("stroke", "0.42,0.42;0.5,0.38;0.56,0.46"))
    win.sampling.random_seed.setChecked(False)
    win.sampling.seed.setValue(3)
    win.sampling.candidates.setValue(4)
    win.generate()
    wait(win.controller.result_committed)
    if win.last_error:
        print("error:", win.last_error)
        return 1
    settle()
    tools = win.step_tools
    tools.scrubber.heatmap.setChecked(True)
    n = tools.scrubber.slider.maximum() + 1
    tools.scrubber.slider.setValue(int(opt("step", str(n // 2 - 1))))
    win.set_tool("brush")
    settle()
    win.grab().save(str(out))
    if opt("result", ""):
        from editor.state.imageconv import save_image

        save_image(win.doc.image, Path(opt("result", "")))
    print(f"saved {out}: {n} steps, shown {tools.scrubber.label.text()}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
