# Set-up, demo, tests and lint. Every target is idempotent: `make demo` and
# `make test` install the environment first when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every version of the .venv that was tested, as pip constraints (see
# `make constraints` below); the requirements files keep only the real pins.
CONSTRAINTS := requirements/constraints.txt
LINT_DIRS := mtl_pvt tools tests
# mmcv 2.1.0 has no wheel for this torch: it is compiled (CPU ops) once,
# then pip's cache serves the wheel.
export MAX_JOBS ?= 2
export MMCV_WITH_OPS := 1

# The GPU profile (docs/get_started.md, "GPU cluster"): `make install GPU=1` compiles
# mmcv's CUDA ops (FORCE_CUDA=1) for TORCH_CUDA_ARCH_LIST with the nvcc of
# CUDA_HOME, else of PATH, else NVIDIA's nvcc wheels for torch's CUDA
# version (tools/misc/cuda_build.py checks the versions first and the
# result after). TORCH_INDEX_URL takes torch from another index, for
# another CUDA build (https://download.pytorch.org/whl/cu126, say).
GPU ?= 0
TORCH_INDEX_URL ?=
TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
ifeq ($(GPU),1)
STAMP := $(VENV)/.mtl_pvt-installed-gpu
else
STAMP := $(VENV)/.mtl_pvt-installed
endif
TORCH_INDEX := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))

.PHONY: install demo demo-data test test-numerics lint constraints clean

install: $(STAMP)

$(STAMP): setup.py requirements/torch.txt requirements/runtime.txt \
		requirements/tests.txt $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade 'pip>=24'
	$(PY) -m pip install $(TORCH_INDEX) -c $(CONSTRAINTS) \
		-r requirements/torch.txt
ifeq ($(GPU),1)
	@# pip's cache may hold a CPU-only mmcv wheel built from the same
	@# sdist: --no-cache-dir, and --force-reinstall over an installed one
	export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST='$(TORCH_CUDA_ARCH_LIST)'; \
	home=$$($(PY) tools/misc/cuda_build.py prepare) || exit 1; \
	echo "mmcv CUDA build: CUDA_HOME=$$home"; start=$$(date +%s); \
	CUDA_HOME=$$home PATH=$$home/bin:$$PATH $(PY) -m pip install \
		--no-build-isolation --no-cache-dir --no-deps --force-reinstall \
		-c $(CONSTRAINTS) 'mmcv==2.1.0' || exit 1; \
	echo "mmcv CUDA build: $$(( $$(date +%s) - start )) s"
endif
	$(PY) -m pip install --no-build-isolation -c $(CONSTRAINTS) \
		-r requirements/runtime.txt
	$(PY) -m pip install -c $(CONSTRAINTS) -r requirements/tests.txt
	$(PY) -m pip install --no-build-isolation --no-deps -e .
	$(PY) -c "import mmcv.ops, mmdet, mmseg, mmpretrain, mtl_pvt"
ifeq ($(GPU),1)
	$(PY) tools/misc/cuda_build.py verify
endif
	touch $(STAMP)

demo-data: $(STAMP)
	$(PY) tools/misc/make_demo_data.py --out data/demo

# The demo study (configs/studies/demo.py): demo data, the full-, partial-
# and no-share models and their matched STL baselines trained and tested
# (tools/study.py run), a tree suggested from the measured task affinity,
# then the report in work_dirs/demo_study/report/. Finished runs are
# skipped when it is run again; an interrupted one resumes.
demo: $(STAMP)
	$(PY) tools/misc/run_demo.py --study configs/studies/demo.py

# The Slurm daemons for the tests' one-node cluster, where root can install
# them (otherwise those tests are skipped, with the reason).
test: $(STAMP)
	bash tools/misc/install_slurm.sh
	$(PY) -m pytest tests

# The test files whose checks have float tolerances, once more with
# PyTorch's portable kernels: they round otherwise than this CPU's
# vectorised ones, as another CPU's would (.ci/run runs this after
# `make test`).
NUMERICS_TESTS := tests/test_engine/test_multi_task_optim_wrapper.py \
	tests/test_engine/test_multi_task_amp_optim_wrapper.py \
	tests/test_docs_guides.py \
	tests/test_models/test_aggregators.py \
	tests/test_models/test_loss_weighting.py \
	tests/test_models/test_multi_task_model.py \
	tests/test_models/test_shared_pvtv2.py \
	tests/test_analysis/test_affinity.py tests/test_analysis/test_cka.py
test-numerics: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest $(NUMERICS_TESTS)

# All three checks run; any finding fails. yapf 0.43 (constraints.txt) exits
# 1 when --diff prints a diff. .ci/run runs this after the tests.
lint: $(STAMP)
	@fail=; \
	echo '$(PY) -m flake8 $(LINT_DIRS) configs'; \
	$(PY) -m flake8 $(LINT_DIRS) configs || fail="$$fail flake8"; \
	echo '$(PY) -m isort --check-only --diff $(LINT_DIRS)'; \
	$(PY) -m isort --check-only --diff $(LINT_DIRS) || fail="$$fail isort"; \
	echo '$(PY) -m yapf --diff --recursive $(LINT_DIRS)'; \
	$(PY) -m yapf --diff --recursive $(LINT_DIRS) || fail="$$fail yapf"; \
	if [ -n "$$fail" ]; then \
		echo "make lint: FAILED:$$fail (findings above; isort and yapf" \
			"fix theirs with: $(PY) -m isort $(LINT_DIRS) &&" \
			"$(PY) -m yapf -i -r $(LINT_DIRS))" >&2; \
		exit 1; \
	fi

# Refresh $(CONSTRAINTS) from the current .venv: after a pin in
# requirements/ changed and was installed there, and the tests and lint
# passed with it. Left out: pip itself, mtl_pvt (editable), and any package
# installed from a URL or path (refused: a constraints file cannot hold one).
constraints:
	test -x $(PY) || { echo "make constraints: no $(PY); make install" >&2; exit 1; }
	$(PY) -m pip freeze --all --exclude-editable > $(CONSTRAINTS).freeze
	grep -v -i -E '^(pip|mtl[-_]pvt)==' $(CONSTRAINTS).freeze > $(CONSTRAINTS).pins
	@if grep -n -v -E '^[A-Za-z0-9._-]+==[^ ]+$$' $(CONSTRAINTS).pins; then \
		echo "make constraints: the lines above are not NAME==VERSION;" \
			"$(CONSTRAINTS) left as it was" >&2; \
		rm -f $(CONSTRAINTS).freeze $(CONSTRAINTS).pins; exit 1; \
	fi
	{ echo '# pip constraints: every package version of the .venv that the tests'; \
	  echo '# and lint passed in, so `make install` (pip install -c) reproduces it.'; \
	  echo '# requirements/*.txt keep the real pins; this file pins what they pull'; \
	  echo '# in. Made by `make constraints` (pip freeze --all --exclude-editable,'; \
	  echo '# less pip and mtl_pvt); refresh it the same way after a change to'; \
	  echo '# requirements/ is installed in .venv and CI passes with it.'; \
	  cat $(CONSTRAINTS).pins; } > $(CONSTRAINTS)
	rm -f $(CONSTRAINTS).freeze $(CONSTRAINTS).pins

clean:
	rm -rf work_dirs data/demo
