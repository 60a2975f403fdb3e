# cleanroom: the two set-up commands are `make demo` and `make test`.
GO      ?= go
FUZZTIME ?= 5s
BIN     := bin/cleanroom

.PHONY: build test demo bench fuzz fuzz-long lint vet fmt-check

build:
	$(GO) build -o $(BIN) ./cmd/cleanroom

# Unit, property and CLI script tests, lint, and a short run of every fuzz target.
test: lint
	$(GO) test ./...
	$(MAKE) fuzz

# The whole flow on synthetic parties.
demo: build
	./$(BIN) demo

# The figures the issues name; each prints one JSON object.
bench: build
	./$(BIN) bench psi -n 1000000 -overlap 0.1
	./$(BIN) bench intersect -n 10000000 -overlap 0.1
	./$(BIN) bench match -n 1000000 -overlap 0.1

# Each fuzz target briefly (go test runs one -fuzz target at a time).
FUZZ_TARGETS := ./psi:FuzzNormalize ./psi:FuzzDecodePoint ./audience:FuzzReader
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME); \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=5m

lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
