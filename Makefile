# pushdeploy: the commands the README and CI use.
#
#   make test      install what is missing, build with tests, run every test
#   make demo      install, build, run the local demo until Ctrl-C (DEMO_ARGS=--exit-after-first-deploy for CI)
#   make build     debug build            make release   release build
#   make bench     run every benchmark in bench/
#   make check     validate examples/pushdeploy.yml (or CONFIG=path)
#   make clean     remove build products

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

SWIFT ?= swift
CONFIG ?= examples/pushdeploy.yml
DEBUG_BIN := .build/debug/pushdeploy

# The system packages the build and the integration tests need (Debian/Ubuntu).
APT_PACKAGES := libgit2-dev pkg-config nginx gradle wrk webhook chromium chromium-driver python3-selenium prometheus

# sudo only when not root: CI runs as root and may have no sudo at all.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: deps build release release-binary test bench demo check clean

## deps: apt-get install the packages that are missing; does nothing when all are there.
deps:
	@missing=""; \
	for package in $(APT_PACKAGES); do \
	  case "$$(dpkg -s "$$package" 2>/dev/null || true)" in \
	    *"Status: install ok installed"*) ;; \
	    *) missing="$$missing $$package" ;; \
	  esac; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "deps: all of $(APT_PACKAGES) are installed"; \
	else \
	  if ! command -v apt-get >/dev/null; then \
	    echo "deps: missing$$missing, and there is no apt-get here: install them by hand" >&2; exit 1; \
	  fi; \
	  echo "deps: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y $$missing </dev/null; \
	fi

## build: debug build of everything.
build: deps
	$(SWIFT) build

## release: optimised build of the server (.build/release/pushdeploy), the one to install. Swift's runtime and
## Foundation are linked in (--static-swift-stdlib): the box that runs it needs libgit2, not a Swift toolchain, and
## `serve` keeps about 11 MB less resident (Package.swift's release linker settings, README "Resident memory").
release: deps
	$(MAKE) --no-print-directory release-binary

## release-binary: the same build without the apt step (the benches and `make test` use it).
release-binary:
	$(SWIFT) build -c release --product pushdeploy --static-swift-stdlib

## test: build the tests, then run them; the summary lines stay visible and a failure fails make, and so does a
## process the tests started that is still alive afterwards (it is listed, then killed).
# The suites run one after another: on two cores, JVMs, Gradle builds and nginx side by side starve each other and
# turn the timing checks (a hook timeout, a fast-failing credential) into noise. --skip-build: no second planning pass.
# A process is this run's when it inherited PUSHDEPLOY_TEST_RUN=<run> (JVMs, Python, Gradle, pushdeploy), or when it is
# an nginx working in this folder: nginx overwrites its environment with its process title, its workers name no
# prefix, but a daemonized nginx keeps the working directory of whoever started it. The system nginx works in /, and
# another checkout's tests in that checkout. What is found gets five seconds to finish going.
# Then every suite that runs the pushdeploy binary runs again against the release build, the binary one installs
# (PUSHDEPLOY_EXECUTABLE; about 3 minutes more), ReleaseBinaryTests only then.
RELEASE_SUITES := EndToEndCLITests CredentialsServerTests ReleaseBinaryTests CrashSafeDeployTests CrashSafeHistoryTests \
  DashboardBrowserTests DemoCommandTests EdgeTests GracefulStopTests HiddenProcSwitchTests HostileServerTests PrometheusScrapeTests
space := $(subst ,, )
test: deps
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory release-binary
	@run="$$$$-$$(date +%s%N)"; status=0; \
	PUSHDEPLOY_TEST_RUN="$$run" $(SWIFT) test --skip-build --no-parallel || status=$$?; \
	echo "test: again against the release build (.build/release/pushdeploy): $(strip $(RELEASE_SUITES))"; \
	PUSHDEPLOY_TEST_RUN="$$run" PUSHDEPLOY_EXECUTABLE="$(CURDIR)/.build/release/pushdeploy" \
	  $(SWIFT) test --skip-build --no-parallel --filter '$(subst $(space),|,$(strip $(RELEASE_SUITES)))' || status=$$?; \
	leftovers() { \
	  for proc in /proc/[0-9]*; do \
	    comm=""; { read -r comm < "$$proc/comm"; } 2>/dev/null || true; \
	    if grep -qzxF "PUSHDEPLOY_TEST_RUN=$$run" "$$proc/environ" 2>/dev/null \
	      || { [ "$$comm" = nginx ] && [ "$$(readlink "$$proc/cwd")" = "$(CURDIR)" ]; }; then \
	      echo "$${proc#/proc/}"; \
	    fi; \
	  done; \
	}; \
	left="$$(leftovers)"; \
	for _ in $$(seq 50); do \
	  [ -z "$$left" ] && break; sleep 0.1; \
	  left="$$(for pid in $$left; do ! kill -0 "$$pid" 2>/dev/null || echo "$$pid"; done)"; \
	done; \
	if [ -n "$$left" ]; then \
	  echo "test: processes the tests started are still alive:" >&2; \
	  ps -o pid=,ppid=,args= -p "$$(echo $$left | tr ' ' ,)" >&2 || true; \
	  kill -KILL $$left 2>/dev/null || true; \
	  status=1; \
	else \
	  echo "test: no process the tests started is left"; \
	fi; \
	exit $$status

## bench: run each executable in bench/; fails at the end if one of them failed.
bench: deps
	@failed=""; \
	for bench in bench/*; do \
	  [ -f "$$bench" ] && [ -x "$$bench" ] || continue; \
	  echo "== $$bench"; \
	  "./$$bench" || failed="$$failed $$bench"; \
	done; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed" >&2; exit 1; fi

## demo: build, then run `pushdeploy demo` (DEMO_ARGS="--exit-after-first-deploy" to stop after the first deployment).
demo: build
	exec $(DEBUG_BIN) demo $(DEMO_ARGS)

## check: validate a config and the tools it names.
check: build
	$(DEBUG_BIN) check --config $(CONFIG)

## clean: build products and test scratch folders (the resolved package checkouts stay).
clean:
	$(SWIFT) package clean
	rm -rf .scratch examples/demo-app/build examples/demo-app/.gradle
