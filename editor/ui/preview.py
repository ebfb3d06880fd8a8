"""The live preview on the canvas: decode steps shown as patches over the image until the
result is applied. One small pixmap item per window: a step costs a window-sized upload, not a
copy of the whole (possibly 24-megapixel) image."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene

from editor.core.geometry import Window
from editor.ui.overlays import MaskOverlay

PREVIEW_Z = 1  # above the image, below the mask overlay


class Preview:
    def __init__(self, scene: QGraphicsScene, overlay: MaskOverlay) -> None:
        self.scene, self.overlay = scene, overlay
        self.patches: dict[tuple[int, int, int, int], QGraphicsPixmapItem] = {}
        self.active = False
        self.step_text = ""  # "step k/T", painted over the view while a decode runs

    def begin(self) -> None:
        self.clear()
        self.overlay.clear_undecided()
        self.active = True
        self.overlay.decoding = True
        self.overlay.update()

    def paint(self, patch: QImage, rect: QRect, text: str) -> bool:
        """Show `patch` at `rect`; False (nothing shown) outside a preview."""
        if not self.active:
            return False
        key = (rect.x(), rect.y(), rect.width(), rect.height())
        item = self.patches.get(key)
        if item is None:
            item = QGraphicsPixmapItem()
            item.setZValue(PREVIEW_Z)
            item.setPos(rect.x(), rect.y())
            self.scene.addItem(item)
            self.patches[key] = item
        pm = QPixmap.fromImage(patch)
        if pm.size() != rect.size():
            pm = pm.scaled(rect.size())
        item.setPixmap(pm)
        self.step_text = text
        return True

    def show_undecided(self, win: Window, masked: np.ndarray) -> None:
        """Shade the tokens of `win` still to be decided (Step.masked) over its patch."""
        self.overlay.set_undecided(win, masked)

    def end(self) -> None:
        self.overlay.clear_undecided()
        self.clear()
        self.active = False
        self.overlay.decoding = False
        self.overlay.update()
        self.step_text = ""

    def clear(self) -> None:
        for item in self.patches.values():
            self.scene.removeItem(item)
        self.patches = {}

    def over(self, image: QImage) -> QImage:
        """`image` with the step patches painted over it."""
        img = image.convertToFormat(QImage.Format.Format_RGB888)
        p = QPainter(img)
        for (x, y, _w, _h), item in self.patches.items():
            p.drawPixmap(x, y, item.pixmap())
        p.end()
        return img
