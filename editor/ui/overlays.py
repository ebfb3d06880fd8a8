"""Canvas overlays of the step tools: the confidence heatmap and the lock layer.

Plain QGraphicsItems the main window adds to the canvas scene, above the mask overlay; they hold
numpy copies and draw with QPainter only (GUI thread).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from editor.core import geometry as g
from editor.state.imageconv import mask_to_qimage

LOCK_RGBA = (40, 130, 255, 90)  # locked pixels: blue, distinct from the pink mask
HEAT_Z, LOCK_Z = 2.6, 2.5  # above the mask overlay (2), below the tool outline (3)


def heat_colour(p: float) -> QColor:
    """`p` in [0, 1]: 0 red and opaque-ish, 0.5 yellow, 1 green and faint, so the weak cells
    stand out and the picture stays visible under the strong ones."""
    p = float(min(max(p, 0.0), 1.0))
    if p < 0.5:
        r, gr = 255, int(510 * p)
    else:
        r, gr = int(510 * (1 - p)), 255
    return QColor(r, gr, 40, int(140 - 120 * p))


def ranks(confidence: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Each region cell's confidence as its rank in [0, 1] among the region's cells.

    p(token) over a 1024-code vocabulary is mostly small and bunched, so an absolute scale
    paints everything red; ranks match what "re-roll the weakest N %" takes (the N % reddest)."""
    out = np.ones(confidence.shape, np.float32)
    vals = confidence[region]
    if vals.size > 1:
        order = np.argsort(np.argsort(vals, kind="stable"), kind="stable")
        out[region] = order / (vals.size - 1)
    return out


class HeatmapOverlay(QGraphicsItem):
    """Per-token confidence of one window: one coloured cell per token of `region`."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(HEAT_Z)
        self._win: g.Window | None = None
        self._conf: np.ndarray | None = None
        self._region: np.ndarray | None = None

    def set_heat(self, win: g.Window | None, confidence: np.ndarray | None,
                 region: np.ndarray | None = None) -> None:
        self.prepareGeometryChange()
        self._win, self._conf = win, None if confidence is None else confidence.copy()
        self._region = None if region is None else region.copy()
        self.update()

    def boundingRect(self) -> QRectF:
        v = self._win
        return QRectF() if v is None else QRectF(v.x, v.y, v.size, v.size)

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        v, conf = self._win, self._conf
        if v is None or conf is None:
            return
        region = self._region if self._region is not None else np.ones(conf.shape, bool)
        rank = ranks(conf, region)
        c = v.size / conf.shape[0]
        p.setPen(Qt.PenStyle.NoPen)
        for i, j in zip(*np.nonzero(region), strict=True):
            p.fillRect(QRectF(v.x + j * c, v.y + i * c, c, c), heat_colour(rank[i, j]))


class LockOverlay(QGraphicsItem):
    """Locked pixels (translucent blue) and, for the planned windows, the token cells they lock
    (hatched): those cells are what the model keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(LOCK_Z)
        self._img = QImage()
        self._locked = np.zeros((0, 0), bool)
        self._windows: list[g.Window] = []
        self._cells: list[np.ndarray] = []

    def set_locked(self, locked: np.ndarray, rect: QRect | None = None) -> None:
        self.prepareGeometryChange()
        if locked.shape != self._locked.shape:
            self._windows = []  # a plan for the old canvas; the new one follows (set_plan)
        self._locked = locked.copy()
        self._img = mask_to_qimage(locked, LOCK_RGBA)
        self._recells()
        self.update()

    def set_plan(self, windows: list[g.Window], _cells: object = None) -> None:
        self.prepareGeometryChange()
        self._windows = list(windows)
        self._recells()
        self.update()

    def _recells(self) -> None:
        ok = self._locked.any()
        self._cells = [g.token_mask(self._locked, v, 0) if ok else np.zeros((0, 0), bool)
                       for v in self._windows]

    def boundingRect(self) -> QRectF:
        r = QRectF(0, 0, self._img.width(), self._img.height())
        for v in self._windows:
            r = r.united(QRectF(v.x, v.y, v.size, v.size))
        return r

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self._img.isNull() or not self._locked.any():
            return
        p.drawImage(0, 0, self._img)
        hatch = QBrush(QColor(40, 130, 255, 200), Qt.BrushStyle.BDiagPattern)
        p.setPen(QPen(QColor(40, 130, 255, 220), 0))
        for v, cells in zip(self._windows, self._cells, strict=True):
            c = v.size / max(cells.shape[0], 1)
            for i, j in zip(*np.nonzero(cells), strict=True):
                p.fillRect(QRectF(v.x + j * c, v.y + i * c, c, c), hatch)
