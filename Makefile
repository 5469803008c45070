# proxyfs top-level Makefile: build, run, test, install.
#
#   make run      build proxyfsd and run it on the embedded default config
#   make test     the whole suite: go vet, Go tests with -race (the FUSE mount
#                 among them: fusefs, cmd/proxyfs-fuse; as root, /dev/fuse),
#                 C library tests (plain, AddressSanitizer+UBSan, valgrind),
#                 the Samba module end to end (smbd, smbclient, smbtorture;
#                 as root)
#   make install  PREFIX=/usr/local DESTDIR=   daemon, library, header, .pc,
#                 the Python package (python/)
#   make python-test  the Python bindings' pytest suite against a real daemon

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
# VERSION is the one version of everything (the file VERSION); COMMIT the
# revision, reported beside it by -version and in the start log.
VERSION  := $(shell cat $(CURDIR)/VERSION)
COMMIT   ?= $(shell git describe --always --dirty 2>/dev/null)
LDFLAGS  := -X github.com/proxyfs/proxyfs/internal/version.Version=$(VERSION) \
            -X github.com/proxyfs/proxyfs/internal/version.Commit=$(COMMIT)
PROXYFSD := $(CURDIR)/bin/proxyfsd
BINDIR     = $(PREFIX)/bin
# GNU/FHS: the configuration of a system install (PREFIX=/usr) lives in /etc,
# that of any other prefix under it (/usr/local/etc, /opt/proxyfs/etc).
SYSCONFDIR ?= $(if $(filter /usr /usr/,$(PREFIX)),/etc,$(PREFIX)/etc)
# INSTALL_STRIP=-s strips the binaries (make install-strip).
INSTALL_STRIP ?=
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/proxyfs
# Debian's python3 (/usr/bin/python3 rather than one first in PATH, such as
# a pyenv shim without Debian's python3-pytest) runs the Python tests.
PYTHON     ?= $(firstword $(wildcard /usr/bin/python3) python3)
# Where the Python package goes: the directories Debian's python3 searches,
# /usr/lib/python3/dist-packages for PREFIX=/usr and
# PREFIX/lib/python3.X/dist-packages otherwise (/usr/local/lib/python3.X/
# dist-packages is on its path; any other prefix needs PYTHONPATH).
PYVER       = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pythondir   = $(if $(filter /usr /usr/,$(1)),$(1)/lib/python3/dist-packages,$(1)/lib/python$(PYVER)/dist-packages)
PYTHONDIR  ?= $(call pythondir,$(PREFIX))

.PHONY: all build run test go-test c-test samba-test python-test install-test fuzz vet lib install install-strip clean bench bench-python bench-fuse bench-smb bench-scale bench-scaleout

all: build lib

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/proxyfsd ./cmd/proxyfsd
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/pfs ./cmd/pfs
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/proxyfs-fuse ./cmd/proxyfs-fuse

lib:
	$(MAKE) -C libproxyfs

run: build
	./bin/proxyfsd

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The reliability tests run verbosely so that their figures (crash cycles,
# operations verified, load latencies, memory) are printed.
# PROXYFS_REQUIRE_SCALEOUT=1: the etcd+Swift engine's tests fail, rather
# than skip, when etcd or Swift is not installed (.ci/run installs them).
# Each package's binary may take 30m: vfsbackend/etcdswift runs the
# conformance suite on Swift and on S3 plus TLS servers of its own, about
# 20 minutes with -race on a loaded 2-core machine.
go-test: vet
	PROXYFS_REQUIRE_SCALEOUT=1 $(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v /reliability$$)
	@mkdir -p bin
	$(GO) test -race -count=1 -timeout 20m -v ./reliability > bin/reliability.log 2>&1; rc=$$?; \
		if [ $$rc = 0 ]; then grep -E '^(--- |ok )|_test.go:[0-9]+:' bin/reliability.log; else cat bin/reliability.log; fi; \
		exit $$rc

# fuzz runs every fuzz target for FUZZTIME each (seeds are in the code and
# in testdata/fuzz; go test runs those as plain tests too).
FUZZTIME ?= 10s
FUZZ_TARGETS := rpcapi/wire:FuzzDecodeRequest rpcapi/wire:FuzzDecodeReply \
	inode:FuzzResolve inode:FuzzCreateName \
	rpcapi/server:FuzzDispatch rpcapi/server:FuzzJSONStream rpcapi/server:FuzzBinaryStream
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		scripts/fuzz-one.sh $(GO) $$pkg $$fn $(FUZZTIME) || exit 1; \
	done

c-test: build
	$(MAKE) -C libproxyfs test PROXYFSD=$(PROXYFSD)
	$(MAKE) -C libproxyfs asan PROXYFSD=$(PROXYFSD)
	$(MAKE) -C libproxyfs valgrind PROXYFSD=$(PROXYFSD)

test: go-test c-test samba-test python-test install-test fuzz

# python-test runs python/tests (pytest from Debian's python3-pytest) against
# bin/proxyfsd, which the fixtures start on a free loopback port, with the
# library of this tree.
python-test: build lib
	cd python && PROXYFSD=$(PROXYFSD) PROXYFS_LIBRARY=$(CURDIR)/libproxyfs/libproxyfs.so.2 \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests

# samba-test builds vfs_proxyfs against Debian's Samba (headers fetched once,
# see samba/fetch-headers.sh), loads a copy of it into a private smbd and
# runs samba/test.sh on loopback: smbclient, locks, smbtorture against vfs_default.
samba-test: build lib
	$(MAKE) -C samba test

install: build lib
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/proxyfs $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(INSTALL_STRIP) bin/proxyfsd $(DESTDIR)$(BINDIR)/proxyfsd
	test ! -e bin/pfs || install -m 0755 $(INSTALL_STRIP) bin/pfs $(DESTDIR)$(BINDIR)/pfs
	test ! -e bin/proxyfs-fuse || install -m 0755 $(INSTALL_STRIP) bin/proxyfs-fuse $(DESTDIR)$(BINDIR)/proxyfs-fuse
	install -m 0644 dist/proxyfsd.toml $(DESTDIR)$(DOCDIR)/proxyfsd.toml.example
	test -e $(DESTDIR)$(SYSCONFDIR)/proxyfs/proxyfsd.toml || \
		install -m 0644 dist/proxyfsd.toml $(DESTDIR)$(SYSCONFDIR)/proxyfs/proxyfsd.toml
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		dist/proxyfsd.service.in > $(DESTDIR)$(UNITDIR)/proxyfsd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/proxyfsd.service
	install -m 0644 README.md PROTOCOL.md $(DESTDIR)$(DOCDIR)/
	$(MAKE) -C libproxyfs install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) INSTALL_STRIP=$(INSTALL_STRIP)
	install -d $(DESTDIR)$(PYTHONDIR)/proxyfs
	install -m 0644 python/proxyfs/*.py python/proxyfs/py.typed $(DESTDIR)$(PYTHONDIR)/proxyfs/

# install-strip is install with the binaries and the library stripped.
install-strip:
	$(MAKE) install INSTALL_STRIP=-s

# install-test installs into a temporary prefix and builds a C program
# against the installed header and library with pkg-config only.
install-test:
	rm -rf $(CURDIR)/bin/install-test
	$(MAKE) install PREFIX=/opt/proxyfs DESTDIR=$(CURDIR)/bin/install-test
	sh dist/install-test.sh $(CURDIR)/bin/install-test /opt/proxyfs
	cd / && env -u PROXYFS_LIBRARY PYTHONPATH=$(CURDIR)/bin/install-test$(call pythondir,/opt/proxyfs) \
		$(PYTHON) $(CURDIR)/dist/install-test.py $(CURDIR)/bin/install-test/opt/proxyfs
	rm -rf $(CURDIR)/bin/install-usr
	$(MAKE) install-strip PREFIX=/usr DESTDIR=$(CURDIR)/bin/install-usr >/dev/null
	test -f $(CURDIR)/bin/install-usr/etc/proxyfs/proxyfsd.toml
	test -f $(CURDIR)/bin/install-usr/usr/lib/python3/dist-packages/proxyfs/__init__.py
	test ! -e $(CURDIR)/bin/install-usr/usr/etc
	grep -q 'config /etc/proxyfs/proxyfsd.toml' $(CURDIR)/bin/install-usr/usr/lib/systemd/system/proxyfsd.service
	! readelf -S $(CURDIR)/bin/install-usr/usr/bin/proxyfsd | grep -q '\.symtab'
	@echo "install-test: PREFIX=/usr puts the config in /etc; install-strip strips"

# bench runs the benchmark against a proxyfsd it starts itself (not part of
# make test); BENCH_ARGS=-quick (or make bench-quick) for a short run.
bench: build lib
	$(MAKE) -C bench run PROXYFSD=$(PROXYFSD) BENCH_ARGS="$(BENCH_ARGS)"

bench-quick: build lib
	$(MAKE) -C bench run PROXYFSD=$(PROXYFSD) BENCH_ARGS="-quick $(BENCH_ARGS)"

# bench-python compares the Python bindings with the C benchmark in the same
# run (bench/pybench.py; PYBENCH_ARGS=--quick for a short run).
bench-python: build lib
	$(MAKE) -C bench bench
	$(PYTHON) bench/pybench.py --proxyfsd $(PROXYFSD) $(PYBENCH_ARGS)

# bench-fuse compares a proxyfs FUSE mount with the local disk under it
# (fio sequential write+fsync and read, 4 KiB random read and write; a
# metadata workload of 10 000 files) and with go-fuse's loopback
# filesystem over the same disk (bench/fuseloop: FUSE alone), and prints
# the ratios (bench/fuse.sh).
bench-fuse: build
	$(GO) build -o bin/fusemeta ./bench/fusemeta
	$(GO) build -o bin/fuseloop ./bench/fuseloop
	sh bench/fuse.sh $(CURDIR)/bin

# bench-smb times smbclient through smbd + vfs_proxyfs against smbd +
# vfs_default on a local directory, in one run (samba/bench.sh; as root;
# BENCH_SMB_ARGS="ROUNDS=1 BIG_MB=256" for a short run).
bench-smb: build lib
	$(MAKE) -C samba bench BENCH_SMB_ARGS="$(BENCH_SMB_ARGS)"

# bench-scale grows one volume to SCALE_N files (default 1 000 000) through
# proxyfsd and prints, at each decade, create/lookup/get_stat rates against
# the empty volume's, memory, bytes on disk per file, restart and -check
# times, lookup_ci rate and latencies, a readdir_plus of the largest
# directory with the daemon's memory meanwhile, and the daemon's CPU per
# operation (bench/scale; SCALE_ARGS for more flags, e.g. -check=false;
# bin/scale -reuse DIR measures a volume kept with -keep -dir DIR).
SCALE_N ?= 1000000
bench-scale: build
	$(GO) build -o bin/scale ./bench/scale
	bin/scale -proxyfsd $(PROXYFSD) -n $(SCALE_N) -clients 16 $(SCALE_ARGS)

# bench-scaleout measures etcdswift volumes served by proxyfsd gateways
# against etcd's raw transaction rate and Swift's raw PUT/GET, one and two
# gateways, in one run, then sequential data on a volume whose data is in
# S3 (Swift's s3api) against the S3 client's raw PUT/GET (TestScaleoutBenchS3)
# (etcd and Swift started on loopback; see BENCHMARKS.md).
# BENCH_SCALEOUT_SECONDS per figure (default 5).
bench-scaleout:
	PROXYFS_BENCH_SCALEOUT=1 PROXYFS_REQUIRE_SCALEOUT=1 PROXYFS_BENCH_SECONDS=$(BENCH_SCALEOUT_SECONDS) \
		$(GO) test ./vfsbackend/etcdswift -run TestScaleoutBench -count=1 -v

clean:
	rm -rf bin
	$(MAKE) -C libproxyfs clean
