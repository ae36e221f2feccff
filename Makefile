# Two commands set everything up: `make demo` (restore the bundled demo images) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is the CPU build; it is only needed for conversion and parity tests.
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) test.py

test: $(STAMP)
	$(PY) -m pytest tests -n 2 --dist worksteal --durations=25

bench: $(STAMP)
	$(PY) benchmarks/conv_cpu.py
	$(PY) benchmarks/bench_models.py

clean-venv:
	rm -rf $(VENV)
