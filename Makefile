# cleanroom: the two set-up commands are `make demo` and `make test`.
GO      ?= go
# Fuzz budgets are counts, not durations: a -fuzztime deadline races go
# test's coordinator on a loaded machine ("context deadline exceeded" with no
# crasher), and the default 60 s minimization of each new interesting input
# would eat a short budget whole.
FUZZTIME ?= 20000x
FUZZMINTIME ?= 200x
BIN     := bin/cleanroom

.PHONY: build test demo bench fuzz fuzz-long lint vet fmt-check arrow-js axe-core redocly openapi-lint screenshots

# The console's browser tests (api TestConsole) save a screenshot
# of each view here; make screenshots refreshes the README's copies.
SCREENSHOTS := $(CURDIR)/build/screenshots

# An Arrow reader written by others (the npm apache-arrow package) checks
# that query answers in Arrow are readable; tests skip the check without npm.
ARROW_JS := $(CURDIR)/.cache/arrow-js

# axe-core (npm) checks every view of the console for accessibility in the
# browser tests (api TestConsoleA11y); without npm the check is skipped,
# saying so, unless CLEANROOM_REQUIRE_BROWSER is set.
AXE := $(CURDIR)/.cache/axe-core
AXE_VERSION := 4.14.1

# Redocly's linter checks the OpenAPI document the server serves
# (api TestOpenAPILint): no error, no warning. Without npm the
# check is skipped, saying so.
REDOCLY := $(CURDIR)/.cache/redocly
REDOCLY_VERSION := 2.77.0
REDOCLY_DIR = $$( command -v node >/dev/null 2>&1 && [ -x $(REDOCLY)/node_modules/.bin/redocly ] && echo $(REDOCLY) )

# The version --version prints: the commit, as git describes it. Without
# git (a source tarball) the binary says what the Go toolchain recorded.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/cleanroom

# Unit, property and CLI script tests, lint, and a short run of every fuzz target.
test: lint arrow-js axe-core
	CLEANROOM_ARROW_JS=$$( [ -d $(ARROW_JS)/node_modules/apache-arrow ] && echo $(ARROW_JS) ) CLEANROOM_REDOCLY=$(REDOCLY_DIR) \
		CLEANROOM_AXE=$$( [ -f $(AXE)/node_modules/axe-core/axe.min.js ] && echo $(AXE) ) \
		CLEANROOM_SCREENSHOTS=$(SCREENSHOTS) $(GO) test ./...
	# The scalar X25519 fallback, as on a CPU without AVX-512 IFMA.
	$(GO) test -tags purego ./psi ./audience ./client
	$(MAKE) fuzz

# The whole flow on synthetic parties.
demo: build
	./$(BIN) demo

# The figures the issues name; each prints one JSON object.
# `bench match -n 10000000 -overlap 0.1` (the 10M x 10M match and its psi
# baseline, about 10 minutes on 2 cores) is in bench/REPORT.md, not here.
bench: build
	./$(BIN) bench psi -n 1000000 -overlap 0.1
	./$(BIN) bench intersect -n 10000000 -overlap 0.1
	./$(BIN) bench match -n 1000000 -overlap 0.1 -runs 3
	./$(BIN) bench query -rows 10000000
	./$(BIN) bench query -rows 10000000 -shape general
	./$(BIN) bench query -rows 1000000 -shape events -runs 3
	$(GO) test ./psi -run '^$$' -bench '^Benchmark(X25519|HashMany|HashToCurve|BlindIDsEvents|BlindIDsDistinct)$$'
	$(GO) test ./api -run '^$$' -bench '^BenchmarkConsoleAuditFirstView$$' -benchtime 20x

# The README's screenshots, from the console's browser tests.
screenshots:
	CLEANROOM_REQUIRE_BROWSER=1 CLEANROOM_SCREENSHOTS=$(SCREENSHOTS) $(GO) test ./api -run '^TestConsole(|RolesPartners|RolesKeys|RolesData|Rules|Workbench)$$' -count=1
	cp $(SCREENSHOTS)/workbench-analyst-390.png $(SCREENSHOTS)/workbench-phone.png
	# Only the images the README shows; the tests' others stay in $(SCREENSHOTS).
	@set -e; for f in $$(grep -o 'docs/screenshots/[a-z0-9-]*\.png' README.md | sort -u); do cp $(SCREENSHOTS)/$${f##*/} $$f; done

# Each fuzz target briefly (go test runs one -fuzz target at a time).
FUZZ_TARGETS := ./psi:FuzzNormalize ./psi:FuzzDecodePoint ./psi:FuzzBatchX25519 ./audience:FuzzReader ./query:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME); \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=2000000x FUZZMINTIME=60s

arrow-js:
	@if command -v npm >/dev/null 2>&1 && [ ! -d $(ARROW_JS)/node_modules/apache-arrow ]; then \
		mkdir -p $(ARROW_JS) && cd $(ARROW_JS) && npm install --no-audit --no-fund --silent apache-arrow@21 >/dev/null 2>&1 \
		|| echo "arrow-js: npm could not install apache-arrow; the foreign Arrow reader check will be skipped"; \
	fi

axe-core:
	@if command -v npm >/dev/null 2>&1 && [ ! -f $(AXE)/node_modules/axe-core/axe.min.js ]; then \
		mkdir -p $(AXE) && cd $(AXE) && npm install --no-audit --no-fund --silent axe-core@$(AXE_VERSION) >/dev/null 2>&1 \
		|| echo "axe-core: npm could not install axe-core; the console's accessibility check will be skipped"; \
	fi

redocly:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "redocly: npm not found: the Redocly lint of the OpenAPI document will be skipped"; \
	elif [ ! -x $(REDOCLY)/node_modules/.bin/redocly ]; then \
		mkdir -p $(REDOCLY) && cd $(REDOCLY) && npm install --no-audit --no-fund --silent @redocly/cli@$(REDOCLY_VERSION) >/dev/null 2>&1 \
		|| echo "redocly: npm could not install @redocly/cli; the Redocly lint of the OpenAPI document will be skipped"; \
	fi

openapi-lint: redocly
	@if [ -n "$(REDOCLY_DIR)" ]; then \
		CLEANROOM_REDOCLY=$(REDOCLY) $(GO) test ./api -run '^TestOpenAPILint$$' -count=1 -v; \
	else \
		echo "openapi-lint: skipped: no @redocly/cli to run (npm or node missing, or its install failed)"; \
	fi

lint: fmt-check vet openapi-lint

# Tracked and new (not ignored) Go files that exist: a file deleted but
# not yet committed is not one.
fmt-check:
	@out=$$(gofmt -l $$( (git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go') | while read -r f; do [ -f "$$f" ] && echo "$$f"; done )); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
