# The README's two commands: `make report` (the study) and `make test` (the tests).
# Both create .venv and install everything on a fresh machine.
# The photo set and the model cards are read from ../shared beside the checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision exact pins: the versions that install from this machine's disk.
TORCH := torch==2.14.1 torchvision==0.29.1

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,onnx,openvino,tflite,web,ray,explain,gpu]"
	touch $@

# The browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
	  (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null)

install: $(BIN)/.installed

test: install $(CHROMIUM)
	$(BIN)/python -m pytest -q

report: install
	$(BIN)/topfive report --readme README.md --mirror ../shared/eval --cards ../shared/models

.PHONY: install test report
