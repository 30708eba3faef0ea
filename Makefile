# Set-up, demo, tests and lint. Every target is idempotent: `make demo` and
# `make test` install the environment first when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mtl_pvt-installed
# mmcv 2.1.0 has no wheel for this torch: it is compiled (CPU ops) once,
# then pip's cache serves the wheel.
export MAX_JOBS ?= 2
export MMCV_WITH_OPS := 1

.PHONY: install demo demo-data test lint clean

install: $(STAMP)

$(STAMP): setup.py requirements/torch.txt requirements/runtime.txt requirements/tests.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade 'pip>=24'
	$(PY) -m pip install -r requirements/torch.txt
	$(PY) -m pip install --no-build-isolation -r requirements/runtime.txt
	$(PY) -m pip install -r requirements/tests.txt
	$(PY) -m pip install --no-build-isolation --no-deps -e .
	$(PY) -c "import mmcv.ops, mmdet, mmseg, mmpretrain, mtl_pvt"
	touch $(STAMP)

demo-data: $(STAMP)
	$(PY) tools/misc/make_demo_data.py --out data/demo

# The demo study: demo data, the three STL baselines and the MTL models
# (full, partial, no sharing) trained and tested, then the report in
# work_dirs/demo_study/. Finished runs are skipped when it is run again.
demo: $(STAMP)
	$(PY) tools/misc/run_demo.py --out work_dirs/demo_study

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(PY) -m flake8 mtl_pvt tools tests configs
	$(PY) -m isort --check-only --diff mtl_pvt tools tests
	$(PY) -m yapf --diff --recursive mtl_pvt tools tests

clean:
	rm -rf work_dirs data/demo
