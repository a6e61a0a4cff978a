# The two commands a newcomer needs (README): `make demo` and `make test`.
# Both create .venv on first use and reinstall when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench fixture clean postgresql

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first: on this machine `torch==2.13.0` is the CPU wheel on local disk. A plain
	# `torch` would pull a multi-GB CUDA build; GPU users install theirs first (README).
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/laughtrack demo --out demo-out

# The report tests open pages in Debian's Chromium through chromedriver (with an emoji font, so the
# transcript's emotion and sound marks show in their screenshots as in a desktop browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
/usr/bin/chromedriver:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji
$(EMOJI_FONT):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fonts-noto-color-emoji

# The scale-out tests start a private PostgreSQL server (Debian's postgresql package).
PG_CTL := $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))
postgresql:
	@[ -n "$(PG_CTL)" ] || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

# PYTEST_ARGS: e.g. --reverse or --random-order (the suite passes in any order), -m "not scale".
test: $(STAMP) /usr/bin/chromedriver $(EMOJI_FONT) postgresql
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

# Re-train the bundled fixture model (deterministic; ~ minutes on 2 cores).
fixture: $(STAMP)
	$(PY) tools/train_fixture.py --out sensevoice_core/fixture

clean:
	rm -rf $(VENV) demo-out
