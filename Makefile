# Build and install registryd as a service. See docs/OPERATIONS.md.
#
#   make                      build the release binaries (swift build -c release)
#   sudo make install         install them, the systemd unit, the user, the directories and, if
#                             there is none yet, /etc/registry.d
#   make install DESTDIR=/tmp/root   stage the same tree under a directory (packaging, tests)
#   sudo make uninstall       remove what install put in place, except configuration and data
#
# Variables: PREFIX (/usr/local), DESTDIR, SYSCONFDIR (/etc), CONFIGURATION (release), BUILDDIR
# (.build/$(CONFIGURATION), where the binaries are taken from).

PREFIX        ?= /usr/local
DESTDIR       ?=
SYSCONFDIR    ?= /etc
BINDIR        ?= $(PREFIX)/bin
LIBDIR        ?= $(PREFIX)/lib
UNITDIR       ?= $(LIBDIR)/systemd/system
SYSUSERSDIR   ?= $(LIBDIR)/sysusers.d
TMPFILESDIR   ?= $(LIBDIR)/tmpfiles.d
DOCDIR        ?= $(PREFIX)/share/doc/registryd
CONFDIR        = $(SYSCONFDIR)/registry.d
STATEDIR      ?= /var/lib/registryd
CONFIGURATION ?= release
BUILDDIR      ?= .build/$(CONFIGURATION)
SWIFT         ?= swift
INSTALL       ?= install

DOCS = README.md docs/API.md docs/ARCHITECTURE.md docs/OPERATIONS.md BENCHMARKS.md RELIABILITY.md schema.sql

.PHONY: all build install uninstall

all: build

build:
	$(SWIFT) build -c $(CONFIGURATION) --product registryd
	$(SWIFT) build -c $(CONFIGURATION) --product registryctl

$(BUILDDIR)/registryd $(BUILDDIR)/registryctl:
	$(MAKE) build

install: $(BUILDDIR)/registryd $(BUILDDIR)/registryctl
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BUILDDIR)/registryd $(BUILDDIR)/registryctl $(DESTDIR)$(BINDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	    dist/registryd.service.in > $(DESTDIR)$(UNITDIR)/registryd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/registryd.service
	$(INSTALL) -m 0644 dist/sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/registryd.conf
	$(INSTALL) -m 0644 dist/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/registryd.conf
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 registry.d/README.md $(DESTDIR)$(DOCDIR)/registry.d.md
	@# The configuration is the operator's: installed once, never overwritten.
	$(INSTALL) -d $(DESTDIR)$(CONFDIR)/models
	@if [ -e $(DESTDIR)$(CONFDIR)/registryd.json ]; then \
	    echo "install: keeping the existing $(DESTDIR)$(CONFDIR)/registryd.json"; \
	else \
	    $(INSTALL) -m 0644 dist/registry.d/registryd.json $(DESTDIR)$(CONFDIR)/registryd.json; \
	fi
	@[ -e $(DESTDIR)$(CONFDIR)/README.md ] || $(INSTALL) -m 0644 registry.d/README.md $(DESTDIR)$(CONFDIR)/README.md
	$(INSTALL) -d -m 0750 $(DESTDIR)$(STATEDIR)
	$(INSTALL) -d -m 2775 $(DESTDIR)$(STATEDIR)/models
	@# On the machine itself (no DESTDIR), as root: the user and group, and the directories' owners.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    if command -v systemd-sysusers >/dev/null; then systemd-sysusers $(SYSUSERSDIR)/registryd.conf; \
	    elif ! getent passwd registryd >/dev/null; then useradd --system --user-group --home-dir $(STATEDIR) --shell /usr/sbin/nologin registryd; fi; \
	    chown registryd:registryd $(STATEDIR) $(STATEDIR)/models; \
	    echo "install: done. Start it with: systemctl daemon-reload && systemctl enable --now registryd"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/registryd $(DESTDIR)$(BINDIR)/registryctl $(DESTDIR)$(UNITDIR)/registryd.service \
	      $(DESTDIR)$(SYSUSERSDIR)/registryd.conf $(DESTDIR)$(TMPFILESDIR)/registryd.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "uninstall: $(CONFDIR) and $(STATEDIR) (configuration, catalog, models) are left in place"
