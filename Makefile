# mpml: the two commands that matter are `make demo` and `make test`.
# Both run `make setup` first, which installs and builds everything mpml needs
# and does nothing that is already done.

SHELL := /bin/bash
BUILD := $(CURDIR)/build
VENV := $(BUILD)/venv
PY := $(VENV)/bin/python
STAMPS := $(BUILD)/stamps
PYTEST_ARGS ?=

.PHONY: all setup system-packages venv firmware demo test bench clean distclean

all: demo

setup: system-packages venv firmware

system-packages:
	@tools/setup/apt.sh

venv: $(STAMPS)/venv

$(STAMPS)/venv: host/pyproject.toml | system-packages
	@echo "mpml setup: creating the virtual environment in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e 'host[test]' --config-settings editable_mode=compat
	@mkdir -p $(STAMPS) && touch $@

# MicroPython's own make is incremental, so this is cheap when nothing changed.
# With BOARD (RPI_PICO, RPI_PICO2, ESP32_GENERIC, ... or a board file's name):
# that board's firmware image, mpml inside, in build/images/BOARD (docs/firmware.md).
firmware: venv
	@src=$$(tools/setup/micropython-source.sh $(BUILD)) && \
	$(PY) tools/setup/build_firmware.py "$$src" $(BUILD)
	@$(PY) tools/setup/build_kernels.py $(BUILD) $(PY)
	@if [ -n "$(BOARD)" ]; then src=$$(tools/setup/micropython-source.sh $(BUILD)) && \
	  $(PY) tools/setup/build_image.py "$$src" $(BUILD) $(BOARD); fi

demo: setup
	@$(PY) tools/demo.py

# The Pico image is checked by tests/test_images.py; a failed build does not
# stop the suite: that test fails with the build's log instead.
test: setup
	@src=$$(tools/setup/micropython-source.sh $(BUILD)) && \
	$(PY) tools/setup/build_image.py "$$src" $(BUILD) RPI_PICO || true
	@$(PY) -m pytest tests -v -rs $(PYTEST_ARGS)

# Benchmarks print tables (the README quotes their latest figures); no pass/fail timing.
bench: setup
	@$(PY) tools/bench/kernel_cycles.py
	@echo
	@$(PY) tools/bench/arena.py
	@echo
	@$(PY) tools/bench/dispatch.py
	@echo
	@$(PY) tools/bench/train_speed.py
	@echo
	@$(PY) tools/bench/accuracy.py
	@echo
	@$(PY) tools/bench/recipes.py
	@echo
	@$(PY) tools/bench/sampler.py
	@echo
	@$(PY) tools/bench/collect.py
	@echo
	@$(PY) tools/bench/features.py
	@echo
	@$(PY) tools/bench/push.py

clean:
	-@[ -x $(PY) ] && $(PY) -m mpml virtual stop --all >/dev/null 2>&1 || true
	rm -rf $(BUILD)/firmware $(BUILD)/run

distclean: clean
	rm -rf $(BUILD)
