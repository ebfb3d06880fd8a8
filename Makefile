# Two commands for users: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: on these machines 2.13.0 is a local CPU wheel, anything looser
# downloads a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test lint clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	# An older checkout installed the plain headless cv2; two cv2 wheels overwrite each other.
	$(BIN)/pip uninstall -q -y opencv-python-headless opencv-python 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/maskgit-editor $(IMAGE)

lint: $(STAMP)
	$(BIN)/ruff check editor models tests bench
	$(BIN)/lint-imports

test: $(STAMP) lint
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

clean:
	rm -rf $(VENV)
