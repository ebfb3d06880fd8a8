"""Canvas overlays: the mask with the token grid of the plan, and for the step tools the
confidence heatmap and the lock layer.

Plain QGraphicsItems in the canvas scene; they hold numpy copies and draw with QPainter only
(GUI thread).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from editor.core import geometry as g
from editor.core.geometry import Window
from editor.state.imageconv import mask_to_qimage

MASK_RGBA = (255, 40, 90, 110)  # translucent pink: readable on photos, distinct from the cells
CELL_RGBA = (255, 210, 0, 70)  # token cells that will be regenerated
SHADE_RGBA = (20, 20, 30, 110)  # tokens of a running decode still undecided


class MaskOverlay(QGraphicsItem):
    """The mask as a translucent layer plus the token grid of the planned windows.

    Token cells are rendered once per plan into their own layer (union of all windows, so
    overlapping windows do not stack their tint) and drawn with a constant opacity.
    """

    def __init__(self) -> None:
        super().__init__()
        self._mask = QImage()
        self._cells = QImage()
        self._cells_at = QRect()  # where the cells layer sits in image pixels
        self._plan_cells: list[np.ndarray] = []
        self._windows: list[Window] = []
        self._tokens: list[int] = []
        self._rect = QRectF()
        self._show_grid = True
        self._decoding = False  # while steps are painted only the window outlines are shown
        self.undecided: dict[tuple[int, int, int], np.ndarray] = {}  # (x, y, size) -> (t, t)
        self._shades: dict[tuple[int, int, int], QImage] = {}  # the same, one (t, t) image each
        self.grid = GridLines(self)

    @property
    def show_grid(self) -> bool:
        return self._show_grid

    @show_grid.setter
    def show_grid(self, on: bool) -> None:
        self._show_grid = on
        self._grid_shown()

    @property
    def decoding(self) -> bool:
        return self._decoding

    @decoding.setter
    def decoding(self, on: bool) -> None:
        self._decoding = on
        self._grid_shown()

    def _grid_shown(self) -> None:
        # Opacity, not visibility: a hidden item loses its cached rendering, and the grid is
        # hidden for every decode and shown again at its commit.
        self.grid.setOpacity(1.0 if self._show_grid and not self._decoding else 0.0)

    def set_undecided(self, win: Window, masked: np.ndarray) -> None:
        """Shade the tokens of `win` still to be decided: one (t, t) image, drawn scaled."""
        key = (win.x, win.y, win.size)
        self.undecided[key] = masked
        self._shades[key] = mask_to_qimage(masked, SHADE_RGBA).convertToFormat(
            QImage.Format.Format_ARGB32_Premultiplied)
        self.update(QRectF(win.x, win.y, win.size, win.size))

    def clear_undecided(self) -> None:
        self.undecided, self._shades = {}, {}

    def set_size(self, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(0, 0, w, h)
        self._mask = QImage(w, h, QImage.Format.Format_ARGB32)
        self._mask.fill(Qt.GlobalColor.transparent)
        self._cells = QImage()

    def update_mask(self, mask: np.ndarray, rect: QRect) -> None:
        r = rect.intersected(QRect(0, 0, self._mask.width(), self._mask.height()))
        if r.isEmpty():
            return
        part = mask_to_qimage(mask[r.top() : r.bottom() + 1, r.left() : r.right() + 1], MASK_RGBA)
        p = QPainter(self._mask)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(r.topLeft(), part)
        p.end()
        self.update(QRectF(r))

    def set_plan(self, windows: list[Window], cells: list[np.ndarray]) -> None:
        self.prepareGeometryChange()
        self._windows = windows
        self._tokens = [c.shape[0] for c in cells]
        # Drawn on the next paint that shows it: a plan that lands while a decode is painted
        # (the mask just left for the worker) costs the GUI thread nothing.
        self._plan_cells = cells
        self._cells = QImage()
        self.grid.set_plan(windows, self._tokens)
        self.update()

    def _cells_layer(self) -> QImage:
        """The highlighted cells of the plan, one solid layer (overlapping windows must not
        darken where they overlap): each window's (t, t) cell mask scaled up, no per-cell
        drawing (an outpaint plan has thousands of cells). It covers the windows only, not the
        whole image: on a 24 MP photo an image-sized layer costs ~30 ms per plan change."""
        if self._cells.isNull() and self._plan_cells:
            area = QRectF()
            for v in self._windows:
                area = area.united(QRectF(v.x, v.y, v.size, v.size))
            self._cells_at = area.intersected(self._rect).toAlignedRect()
            a = self._cells_at
            layer = QImage(max(a.width(), 1), max(a.height(), 1),
                           QImage.Format.Format_ARGB32_Premultiplied)
            layer.fill(Qt.GlobalColor.transparent)
            p = QPainter(layer)
            solid = (*CELL_RGBA[:3], 255)
            for v, c in zip(self._windows, self._plan_cells, strict=True):
                p.drawImage(QRectF(v.x - a.x(), v.y - a.y(), v.size, v.size),
                            mask_to_qimage(c, solid))
            p.end()
            self._cells = layer
        return self._cells

    def boundingRect(self) -> QRectF:
        r = QRectF(self._rect)
        for v in self._windows:
            r = r.united(QRectF(v.x, v.y, v.size, v.size))
        return r

    def paint(
        self, p: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.decoding:
            p.drawImage(0, 0, self._mask)
        if not self.show_grid:
            return
        if not self.decoding and not self._cells_layer().isNull():
            p.setOpacity(CELL_RGBA[3] / 255)
            p.drawImage(self._cells_at.topLeft(), self._cells)
            p.setOpacity(1.0)
        if self.decoding and self._shades:
            # Tokens the sampler has not committed yet: they fade out step by step. One image
            # per window, scaled: a fillRect per cell cost the GUI thread 2-4 ms a step.
            p.save()
            p.setClipRect(self._rect)
            for (x, y, size), shade in self._shades.items():
                p.drawImage(QRectF(x, y, size, size), shade)
            p.restore()
        p.setPen(QPen(QColor(255, 210, 0, 200), 0, Qt.PenStyle.DashLine))
        for v in self._windows:
            p.drawRect(QRectF(v.x, v.y, v.size, v.size))


class GridLines(QGraphicsItem):
    """The token grid of the planned windows, a child of the mask overlay, cached in device
    coordinates: hundreds of 1-px lines cost the raster engine 5-15 ms a paint, and the canvas
    is painted at every decode step and at the commit. Drawn again only when the plan or the
    zoom changes."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._lines: list[QLineF] = []
        self._rect = QRectF()

    def set_plan(self, windows: list[Window], tokens: list[int]) -> None:
        self.prepareGeometryChange()
        self._rect, self._lines = QRectF(), []
        for v, t in zip(windows, tokens, strict=True):
            self._rect = self._rect.united(QRectF(v.x, v.y, v.size, v.size))
            c = v.size / t
            for k in range(1, t):
                self._lines.append(QLineF(v.x + k * c, v.y, v.x + k * c, v.y + v.size))
                self._lines.append(QLineF(v.x, v.y + k * c, v.x + v.size, v.y + k * c))
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self._lines:
            p.setPen(QPen(QColor(255, 255, 255, 60), 0))  # cosmetic: 1 screen px at any zoom
            p.drawLines(self._lines)

LOCK_RGBA = (40, 130, 255, 90)  # locked pixels: blue, distinct from the pink mask
KEEP_OUT_RGBA = (255, 170, 0, 100)  # kept-out pixels: amber
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
    (hatched): those cells are what the model keeps. With `cells` False, the pixels alone in
    `rgba` (the keep-out layer: whole pixels, not cells, are what fills do not copy)."""

    def __init__(self, rgba: tuple[int, int, int, int] = LOCK_RGBA, cells: bool = True) -> None:
        super().__init__()
        self.setZValue(LOCK_Z)
        self._rgba, self._show_cells = rgba, cells
        self._img = QImage()
        self._locked = np.zeros((0, 0), bool)
        self._any = False
        self._windows: list[g.Window] = []
        self._cells: list[np.ndarray] = []

    def set_locked(self, locked: np.ndarray, rect: QRect | None = None) -> None:
        """Show `locked`; with `rect` (a brush dab's), only that part of it changed. Converting
        the whole layer at every dab cost the GUI thread 45-100 ms on a 12-megapixel photo."""
        h, w = locked.shape
        if (rect is not None and locked.shape == self._locked.shape
                and not rect.contains(QRect(0, 0, w, h))):
            self._update_part(locked, rect)
            return
        self.prepareGeometryChange()
        if locked.shape != self._locked.shape:
            self._windows = []  # a plan for the old canvas; the new one follows (set_plan)
        self._locked = locked.copy()
        self._any = bool(locked.any())
        # An empty layer (most documents) has no image until its first dab: converting a
        # 12-megapixel empty layer took ~50 ms of every photo opened, per layer.
        self._img = mask_to_qimage(locked, self._rgba) if self._any else QImage()
        self._recells()
        self.update()

    def _update_part(self, locked: np.ndarray, rect: QRect) -> None:
        h, w = locked.shape
        r = rect.intersected(QRect(0, 0, w, h))
        if r.isEmpty():
            return
        if self._img.isNull():  # an empty layer's first dab
            if not locked[r.top() : r.bottom() + 1, r.left() : r.right() + 1].any():
                return
            self._img = QImage(w, h, QImage.Format.Format_ARGB32)
            self._img.fill(Qt.GlobalColor.transparent)
        part = (slice(r.top(), r.bottom() + 1), slice(r.left(), r.right() + 1))
        self._locked[part] = locked[part]
        self._any = bool(self._locked.any())
        p = QPainter(self._img)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(r.topLeft(), mask_to_qimage(locked[part], self._rgba))
        p.end()
        if self._windows:
            self._recells()
            self.update()
        else:
            self.update(QRectF(r))

    def set_plan(self, windows: list[g.Window], _cells: object = None) -> None:
        self.prepareGeometryChange()
        self._windows = list(windows) if self._show_cells else []
        self._recells()
        self.update()

    def _recells(self) -> None:
        self._cells = [g.token_mask(self._locked, v, 0) if self._any else np.zeros((0, 0), bool)
                       for v in self._windows]

    def boundingRect(self) -> QRectF:
        r = QRectF(0, 0, self._locked.shape[1], self._locked.shape[0])
        for v in self._windows:
            r = r.united(QRectF(v.x, v.y, v.size, v.size))
        return r

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self._img.isNull() or not self._any:
            return
        p.drawImage(0, 0, self._img)
        hatch = QBrush(QColor(40, 130, 255, 200), Qt.BrushStyle.BDiagPattern)
        p.setPen(QPen(QColor(40, 130, 255, 220), 0))
        for v, cells in zip(self._windows, self._cells, strict=True):
            c = v.size / max(cells.shape[0], 1)
            for i, j in zip(*np.nonzero(cells), strict=True):
                p.fillRect(QRectF(v.x + j * c, v.y + i * c, c, c), hatch)
