# Two commands for users: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: on these machines 2.13.0 is a local CPU wheel, anything looser
# downloads a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test lint clean sysdeps

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	# An older checkout installed the plain headless cv2; two cv2 wheels overwrite each other.
	$(BIN)/pip uninstall -q -y opencv-python-headless opencv-python 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Qt's xcb platform plugin dlopens system libraries a minimal Debian/Ubuntu lacks (libxcb-cursor0,
# libxcb-icccm4...); without them the app aborts before any window. ldd names the missing
# sonames; the Debian package of libfoo.so.N is libfooN (libfoo-N when foo ends in a digit).
# Root with apt-get installs them; anyone else gets the one command to run. XVFB=1 (make test)
# adds Xvfb for the real-window smoke test.
QTDIR = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/PySide6/Qt))
sysdeps: $(STAMP)
	@[ -f "$(QTDIR)/plugins/platforms/libqxcb.so" ] || exit 0; \
	libs=$$(ldd $(QTDIR)/plugins/platforms/libqxcb.so $(QTDIR)/lib/libQt6XcbQpa.so.6 \
	    | awk '/not found/ {print $$1}' | sort -u); \
	pkgs=$$(for l in $$libs; do echo "$$l" | sed -E 's/^libg(lib|thread)-2\.0\.so\.0$$/libglib2.0.so.0/' \
	    | tr A-Z a-z | sed -E 's/\.so\.([0-9]+).*$$/ \1/; s/([0-9]) ([0-9]+)$$/\1-\2/; s/ //'; done); \
	if [ "$(XVFB)" = 1 ] && ! command -v Xvfb >/dev/null; then pkgs="$$pkgs xvfb"; fi; \
	pkgs=$$(echo $$pkgs); \
	if [ -z "$$pkgs" ]; then exit 0; fi; \
	[ -z "$$libs" ] || echo "Qt's xcb platform plugin is missing: $$(echo $$libs)"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing $$pkgs"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$pkgs || exit 1; \
	elif command -v apt-get >/dev/null; then \
	  echo "Run this once, then make again:"; echo "    sudo apt-get install -y $$pkgs"; exit 1; \
	else \
	  echo "Install your system's packages for: $$libs $(if $(filter 1,$(XVFB)),Xvfb)"; exit 1; \
	fi

run: $(STAMP) sysdeps
	$(BIN)/maskgit-editor $(IMAGE)

lint: $(STAMP)
	$(BIN)/ruff check editor models tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) lint
	$(MAKE) --no-print-directory sysdeps XVFB=1
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

clean:
	rm -rf $(VENV)
