# proxyfs top-level Makefile: build, run, test, install.
#
#   make run      build proxyfsd and run it on the embedded default config
#   make test     the whole suite: go vet, Go tests with -race, C library tests
#                 (plain, AddressSanitizer+UBSan, valgrind)
#   make install  PREFIX=/usr/local DESTDIR=   daemon, library, header, .pc

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PROXYFSD := $(CURDIR)/bin/proxyfsd

.PHONY: all build run test go-test c-test vet lib install clean bench

all: build lib

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/proxyfsd ./cmd/proxyfsd

lib:
	$(MAKE) -C libproxyfs

run: build
	./bin/proxyfsd

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

go-test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

c-test: build
	$(MAKE) -C libproxyfs test PROXYFSD=$(PROXYFSD)
	$(MAKE) -C libproxyfs asan PROXYFSD=$(PROXYFSD)
	$(MAKE) -C libproxyfs valgrind PROXYFSD=$(PROXYFSD)

test: go-test c-test

install: build lib
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/proxyfsd $(DESTDIR)$(PREFIX)/bin/proxyfsd
	$(MAKE) -C libproxyfs install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

clean:
	rm -rf bin
	$(MAKE) -C libproxyfs clean
