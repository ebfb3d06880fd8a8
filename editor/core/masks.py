"""Whole-mask operations of the Edit menu (Qt-free)."""

from __future__ import annotations

import cv2
import numpy as np

MASK_STEP = 8  # px a mask grows or shrinks by (Ctrl+] / Ctrl+[)


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """`mask` grown by `px` pixels (shrunk for px < 0) with a round brush: removing an object
    needs its edge and shadow covered too. Beyond the image counts as unmasked when growing and
    as masked when shrinking, so a mask on the border stays there."""
    r = abs(px)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)
    op = cv2.dilate if px > 0 else cv2.erode
    return op(mask.astype(np.uint8), disc, borderValue=0 if px > 0 else 1).astype(bool)
