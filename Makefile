# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when missing, install
# the pinned versions once (a stamp file remembers what was installed) and are safe to run again.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test install fashion-mnist bench-teacher clean

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch and torchvision are pinned on the command line too: other versions would download gigabytes.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1 -e '.[all]'
	touch $(STAMP)

# Fashion-MNIST from Debian's package (needs root and a Debian machine); elsewhere the loader
# falls back to torchvision's download.
fashion-mnist:
	@if [ -d $(FMNIST) ]; then echo "Fashion-MNIST already in $(FMNIST)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -q dataset-fashion-mnist; \
	else echo "Run 'sudo apt-get install dataset-fashion-mnist', or set DISTILL_GYM_FASHION_MNIST to a folder with the IDX files"; exit 1; fi

bench-teacher: $(STAMP) fashion-mnist
	$(PY) scripts/bench_teacher.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
