"""File commands of the main window: open (images and projects), paste, save, export, the mask
files, the recent list. Failures are shown and never lose the document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from editor.core import imageio
from editor.core.imageio import READ_FORMATS
from editor.state.imageconv import png_bytes, to_qimage
from editor.state.project import EXT as PROJECT_EXT
from editor.ui.unfrozen import run_unfrozen

if TYPE_CHECKING:
    from editor.ui.host import Host

MAX_RECENT = 10
OPEN_FILTER = ("Images and projects (" + " ".join(f"*.{e}" for e in READ_FORMATS)
               + f" *{PROJECT_EXT});;All files (*)")
SAVE_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
MASK_OPEN_FILTER = ("Images (" + " ".join(f"*.{e}" for e in READ_FORMATS)
                    + ");;All files (*)")
MASK_SAVE_FILTER = "PNG (*.png)"


class Files(QObject):
    def __init__(self, win: Host) -> None:
        super().__init__(win.window())
        self.win = win

    def open_dialog(self) -> None:
        start = str(self.win.doc.path.parent) if self.win.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(
            self.win.window(), "Open image", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open an image; on failure show why and keep the current document untouched."""
        if not self.may_discard():
            return False
        if Path(path).suffix.lower() == PROJECT_EXT:
            if not self.win.session.open_project(path):
                return False
            self.add_recent(str(Path(path).resolve()))
            return True
        # Decoding a big photo takes a second or more (24 MP PNG: 1.3 s on 2 cores): say so.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            loaded = run_unfrozen(lambda: imageio.load(path))  # the window keeps painting
        except ValueError as e:
            self.win.show_error("Could not open", str(e))
            self.forget_recent(str(path))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self.show_loaded(loaded, Path(path), Path(path).name)
        self.add_recent(str(Path(path).resolve()))
        return True

    def show_loaded(self, loaded: imageio.LoadedImage, path: Path | None, name: str) -> None:
        """`loaded` becomes the document (an opened file, or a pasted image: no path)."""
        self.win.controller.cancel()
        self.win.controller.accept()
        image = loaded.rgb
        self.win.doc.reset(image, path, alpha=loaded.alpha, straight=loaded.straight,
                       exif=loaded.exif, icc_profile=loaded.icc_profile)
        QTimer.singleShot(0, self.win.canvas.fit)
        note = f" · {loaded.note}" if loaded.note else ""
        self.win.statusBar().showMessage(f"Opened {name} ({image.shape[1]}×{image.shape[0]}){note}",
                                     8000)

    def copy_image(self) -> None:
        """The image as it is now, to the clipboard (to paste into another program)."""
        QApplication.clipboard().setImage(to_qimage(self.win.doc.export_rgba()))  # alpha kept
        doc = self.win.doc
        self.win.statusBar().showMessage(f"Copied the image ({doc.width}×{doc.height})", 5000)

    def paste_image(self) -> bool:
        """A new document from the clipboard: an image, or a copied image file."""
        data = QApplication.clipboard().mimeData()  # None on some platforms before any copy
        files = ([u.toLocalFile() for u in data.urls() if u.isLocalFile()]
                 if data is not None and data.hasUrls() else [])
        if files:
            return self.open_path(files[0])
        if data is None or not data.hasImage():
            self.win.show_error("Nothing to paste", "The clipboard holds no image. Copy an image "
                            "(or an image file) in another program first.")
            return False
        image = QApplication.clipboard().image()
        if imageio.too_large(image.width(), image.height()):  # before any copy of its pixels
            self.win.show_error("Could not paste", f"The clipboard image is {image.width()} x "
                            f"{image.height()} pixels; the editor opens images up to "
                            f"{imageio.limit_text()}.")
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:  # the same checks as a file (alpha, modes), through one lossless encoding, off
            # the GUI thread (a QImage may be read on another): 1.3-2.5 s at 1 megapixel on a
            # busy machine, the window frozen meanwhile
            loaded = run_unfrozen(
                lambda: imageio.decode(png_bytes(image), "the clipboard image"))
        except ValueError as e:
            self.win.show_error("Could not paste", str(e))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        if not self.may_discard():
            return False
        self.show_loaded(loaded, None, "the clipboard image")
        return True

    def save(self) -> bool:
        """Save the document where it came from: its project, else its image file (a recovered
        document is a project, never saved over its photo)."""
        if self.win.session.project_path is not None or self.win.session.unsaved_recovery:
            return self.win.session.save_project(self.win.session.project_path)
        if self.win.doc.path is None or self.win.doc.path.suffix.lower().lstrip(".") not in (
            "png", "jpg", "jpeg", "webp"
        ):
            return self.save_as()
        return self.save_to(self.win.doc.path)

    def save_as(self) -> bool:
        start = str(self.win.doc.path.with_suffix(".png")) if self.win.doc.path else "untitled.png"
        path, _ = QFileDialog.getSaveFileName(
            self.win.window(), "Save image", start, SAVE_FILTER)
        return bool(path) and self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the image to `path`. Without an open project the document becomes that file;
        with one, this is an export: the project stays what Ctrl+S saves, unsaved changes
        stay unsaved."""
        if not path.suffix:
            path = path.with_suffix(".png")
        doc = self.win.doc
        index, rgba = doc.undo_stack.index(), doc.export_rgba().copy()  # as it is now
        rgb, alpha = rgba[..., :3], rgba[..., 3] if rgba.shape[2] == 4 else None
        exif, icc = doc.exif, doc.icc_profile
        self.win.statusBar().showMessage(f"Saving {path.name}…")
        try:
            run_unfrozen(lambda: imageio.save(path, rgb, alpha, exif, icc_profile=icc))
        except ValueError as e:
            self.win.show_error("Could not save", str(e))
            return False
        self.add_recent(str(path.resolve()))
        if self.win.session.project_path is not None:
            self.win.statusBar().showMessage(f"Exported {path}", 5000)
            return True
        clean = doc.undo_stack.index() == index  # else it changed while being written
        doc.mark_saved(path, clean)
        since = "" if clean else " (the changes since are not)"
        self.win.statusBar().showMessage(f"Saved {path}{since}", 5000)
        return True

    def import_mask_dialog(self) -> None:
        start = str(self.win.doc.path.parent) if self.win.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(
            self.win.window(), "Import mask", start, MASK_OPEN_FILTER)
        if path:
            self.import_mask(path)

    def import_mask(self, path: str | Path) -> bool:
        """Replace the mask with a mask file (white = regenerate, as the CLI's --masks) as one
        undo step; a mask of the canvas's aspect ratio is scaled. On failure show why and
        change nothing."""
        try:
            read = imageio.load_mask(path)
            mask = imageio.fit_mask(read, self.win.doc.mask.shape)
        except ValueError as e:  # an unreadable file names itself; a size mismatch does not
            text = str(e) if isinstance(e, imageio.ImageLoadError) else f"{Path(path).name}: {e}"
            self.win.show_error("Could not import the mask", text)
            return False
        self.win.doc.set_mask(mask, "Import mask")
        scaled = f" (scaled from {read.shape[1]}×{read.shape[0]})" if read is not mask else ""
        self.win.statusBar().showMessage(f"Imported mask {Path(path).name}{scaled}", 8000)
        return True

    def export_mask_dialog(self) -> None:
        p = self.win.doc.path
        start = str(p.with_name(f"{p.stem}-mask.png")) if p else "mask.png"
        path, _ = QFileDialog.getSaveFileName(
            self.win.window(), "Export mask", start, MASK_SAVE_FILTER)
        if path:
            self.export_mask(path)

    def export_mask(self, path: str | Path) -> bool:
        """Write the mask as a PNG of the canvas size: white = regenerate, black = kept."""
        p = Path(path)
        if not p.suffix:
            p = p.with_suffix(".png")
        try:
            imageio.save_mask(p, self.win.doc.mask)
        except ValueError as e:
            self.win.show_error("Could not export the mask", str(e))
            return False
        self.win.statusBar().showMessage(f"Exported the mask to {p}", 5000)
        return True

    def may_discard(self) -> bool:
        if not self.win.confirm or not self.win.doc.modified:
            return True
        r = QMessageBox.question(
            self.win.window(), "Unsaved changes", "Save the changes to the current document first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if r == QMessageBox.StandardButton.Save:
            return self.save()
        return r == QMessageBox.StandardButton.Discard

    def setting(self, key: str, default: object = None) -> object:
        """A stored value, or `default` when the settings file holds something unreadable."""
        try:
            return self.win.settings.value(key, default)
        except Exception:  # a damaged file can make QSettings' unpickling raise anything
            return default

    def recent(self) -> list[str]:
        v = self.setting("recent", [])
        return [str(x) for x in (v if isinstance(v, list) else [v] if v else [])]

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent() if p != path]
        self.win.settings.setValue("recent", items[:MAX_RECENT])
        self.refresh_recent()

    def forget_recent(self, path: str) -> None:
        items = [p for p in self.recent() if p != str(Path(path).resolve()) and p != path]
        self.win.settings.setValue("recent", items)
        self.refresh_recent()

    def refresh_recent(self) -> None:
        self.win.recent_menu.clear()
        for p in self.recent():
            a = self.win.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.win.recent_menu.setEnabled(bool(self.recent()))

