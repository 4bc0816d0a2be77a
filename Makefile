# llmesh — make help lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/llmesh/llmesh/pkg/version.Version=$(VERSION)
BIN      := bin
# buf and staticcheck: go tools of the tools module (tools/go.mod).
TOOL     := $(GO) tool -modfile=tools/go.mod
# Packages whose tests run under the race detector (everything with goroutines).
RACE_PKGS := ./pkg/... ./internal/...

.PHONY: help build run demo test allocs test-deploy compose-image compose-test test-tools screenshot chaos scale vet lint ci fuzz bench bench-table bench-micro bench-wan proto proto-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/ingress, bin/egress and bin/fakeprovider
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

run: ## start one ingress on 127.0.0.1:8080 with built-in defaults (direct proxy)
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ingress $(if $(CONFIG),-config $(CONFIG))

demo: build ## start a local mesh (2 ingress, 2 wnam egress, fake provider) and print what to try
	./deploy/demo/demo.sh

test: vet ## vet, then the whole suite with the race detector, the allocation checks and short fuzz runs, and the deploy module's tests
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory allocs
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME) SLOW_FUZZTIME=$(TEST_FUZZTIME_SLOW)
	$(MAKE) --no-print-directory test-deploy

# deploy/ is its own Go module (deploy/go.mod), so that the Kubernetes
# libraries its tests use stay out of the main module. It imports a few
# small packages of the main one (replace => ../): if a dependency change
# there makes go complain about deploy/go.sum, run cd deploy && go mod tidy.
test-deploy: ## the deploy module's tests: Kubernetes manifests, compose file, systemd units
	cd deploy && $(GO) test -count=1 ./...

# The offline image: static binaries on an empty base, for deploy/compose
# where no registry is reachable (deploy/Dockerfile is the one for users).
IMAGE ?= llmesh:local
compose-image: ## build the image $(IMAGE) FROM scratch with static binaries (no registry needed)
	rm -rf $(BIN)/image && mkdir -p $(BIN)/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/image/ ./cmd/...
	cp deploy/compose/Dockerfile.scratch $(BIN)/image/Dockerfile
	cp /etc/ssl/certs/ca-certificates.crt $(BIN)/image/ 2>/dev/null || : > $(BIN)/image/ca-certificates.crt
	docker build -q -t $(IMAGE) $(BIN)/image

compose-test: ## bring the compose mesh up (docker daemon), send a request through each ingress, tear it down
	cd deploy && LLMESH_DOCKER=1 $(GO) test -count=1 -v -timeout 10m -run 'TestComposeUp' ./compose/

test-tools: ## install chromium and promtool for the tests that skip without them (root; what .ci/run does)
	bash .ci/install-test-tools.sh

screenshot: ## save docs/status.png: the status page of a small in-process mesh, in headless chromium
	LLMESH_STATUS_SCREENSHOT=docs/status.png $(GO) test -count=1 -run '^TestStatusPage$$' ./e2e

# The allocation checks (TestAllocs*) build without -race only: the race
# detector allocates on its own.
allocs: ## the allocation checks of the hot paths (allocations per request, without -race)
	$(GO) test -count=1 -run '^TestAllocs' ./pkg/proxy ./pkg/tunnel

chaos: ## the long chaos tests: partition and heal in network namespaces (root), a 10-minute stream, kill -9, rolling restart, gossip dead-node times
	LLMESH_CHAOS=1 $(GO) test -race -count=1 -timeout 30m -v -run 'TestProfileDeadTime' ./pkg/membership
	LLMESH_CHAOS=1 $(GO) test -race -count=1 -timeout 30m -v -run 'TestPartitionHeals|TestTenMinuteStream|TestKill9MidStream|TestRollingRestart' ./e2e
	$(MAKE) --no-print-directory scale

scale: ## 100 in-process nodes on loopback (20 ingress, 80 egress, lan gossip): converge, route, 3 egress killed, 0 failed
	LLMESH_SCALE=1 $(GO) test -count=1 -timeout 10m -v -run '^TestScale$$' ./e2e

vet: ## go vet and gofmt (both modules)
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet proto-check ## vet, gofmt, staticcheck, buf lint and a check that generated code is current
	$(TOOL) staticcheck ./...
	cd deploy && $(GO) tool -modfile=../tools/go.mod staticcheck ./...

ci: lint test ## what CI runs (.ci/run, on a clean clone): lint, then test

# make test fuzzes each target for a number of executions, not a duration: a
# duration races Go's fuzz coordinator at the deadline and fails with a bare
# "context deadline exceeded" and no crasher (golang/go#75804, fixed in Go 1.27).
TEST_FUZZTIME ?= 10000x
FUZZTIME ?= 60s
# Targets that run a real tunnel per input (about 1 ms each) get fewer
# executions in make test; make fuzz gives every target FUZZTIME.
SLOW_FUZZ := FuzzTunnelBytes
TEST_FUZZTIME_SLOW ?= 2000x
fuzz: ## run every fuzz target for FUZZTIME each (default 60s; or a count like 100000x)
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg internal | xargs grep -ho '^func Fuzz[A-Za-z0-9_]*' | sort -u | sed 's/func //'); do \
	  pkg=$$(dirname $$(grep -rl --include='*_test.go' "^func $$spec(" pkg internal | head -1)); \
	  t=$(FUZZTIME); case " $(SLOW_FUZZ) " in *" $$spec "*) t=$(or $(SLOW_FUZZTIME),$$t);; esac; \
	  echo "fuzz $$spec in ./$$pkg ($$t)"; \
	  $(GO) test -run '^$$' -fuzz "^$$spec$$" -fuzztime $$t ./$$pkg && continue; \
	  if [ -z "$$(git status --porcelain --untracked-files=all $$pkg/testdata/fuzz/$$spec 2>/dev/null)" ] && \
	     [ "$(findstring x,$(FUZZTIME))" = "" ]; then \
	    echo "fuzz $$spec: failed at the deadline without writing a crasher: golang/go#75804, not a finding"; continue; fi; \
	  exit 1; \
	done

bench: bench-table bench-micro ## the comparison table (BENCH_QUICK=1: a 30 s smoke run), then the micro-benchmarks

bench-table: ## DIRECT, the Go floors and llmesh side by side, one table from one run (internal/bench)
	$(GO) run ./internal/bench/cmd/bench -go $(GO)

bench-micro: ## the go test -bench micro-benchmarks of every package
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

# WAN_RTT, WAN_RATE (Mbit/s), WAN_LOSS (a fraction) change the link;
# WAN_INITCWND=100 sets the initial window of the link routes on both hosts;
# WAN_ROWS=warm,paced,beside,fresh,back,connecting,cut,idle picks rows;
# WAN_IDLE=31m runs the 30-minute idle row;
# WAN_LOGS=dir keeps the node logs.
bench-wan: ## across an emulated ocean (root, ip, /dev/net/tun; skips without): check the link, then each row against its floor
	LLMESH_WAN=1 $(GO) test -count=1 -v -run '^(TestHostsBounds|TestOceanLink)$$' ./internal/wan
	LLMESH_WAN=1 $(GO) test -count=1 -timeout $(if $(WAN_IDLE),60m,10m) -v -run '^TestAcrossOceans$$' ./e2e

# buf compiles the proto itself (no protoc) and runs protoc-gen-go and
# protoc-gen-go-grpc with go tool: those two are pinned in go.mod, beside the
# protobuf and grpc runtimes their code calls. buf and staticcheck are pinned
# in tools/go.mod, so their many dependencies stay out of the main module.
PROTO_GEN := ':(glob)proto/**/*.pb.go'
proto: ## regenerate proto/llmesh/tunnel/v1/tunnelv1 from tunnel.proto (buf, as go tools)
	find proto -name '*.pb.go' -delete
	$(TOOL) buf generate

proto-check: proto ## buf lint, and fail when the generated code in git differs from what make proto writes
	$(TOOL) buf lint
	git diff --exit-code -- $(PROTO_GEN)
	@new=$$(git ls-files --others -- $(PROTO_GEN)); \
	  if [ -n "$$new" ]; then echo "generated but not added to git:"; echo "$$new"; exit 1; fi

clean: ## remove build output
	rm -rf $(BIN) .bin
