# make demo: set up .venv, fetch the data (workbench demo), run the main job.
# make test: set up .venv, fetch the data the tests read (tests/conftest.py), run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export WORKBENCH_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(CURDIR)/data)
export PYTHONHASHSEED := 0

.PHONY: demo test venv bench clean course course-student

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/workbench demo

test: venv
	$(BIN)/python -m pytest -n auto --dist worksteal

course-student: venv
	$(BIN)/workbench course student runs/course/student

course: venv
	$(BIN)/workbench course html runs/course/html

bench: venv
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
