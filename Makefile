# Install and uninstall vmtools. `make install PREFIX=/usr DESTDIR=/tmp/pkg` for packagers;
# `make deb` builds a Debian package (packaging/build-deb.sh).
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
COMMANDS = vmup vmcreate vmdown vmps vminfo vmmon vmcp vmfork vmmv vmrm vmmerge vmfix vmrndmac vmimage vmsnap

BIN = $(DESTDIR)$(PREFIX)/bin
SHARE = $(DESTDIR)$(PREFIX)/share/vmtools
MAN = $(DESTDIR)$(PREFIX)/share/man
BASHCOMP = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
FISHCOMP = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
ZSHCOMP = $(DESTDIR)$(PREFIX)/share/zsh/site-functions

.PHONY: all build test install uninstall deb

all: build

build:
	$(SWIFT) build -c release --product vmtools --static-swift-stdlib

test:
	$(SWIFT) test

# vmtools_<version>-1_<arch>.deb in the checkout (packaging/build-deb.sh).
deb: build
	bash packaging/build-deb.sh

install: build
	install -d $(BIN) $(SHARE)/templates $(SHARE)/images $(MAN)/man1 $(MAN)/man5 $(MAN)/man7 $(BASHCOMP) $(FISHCOMP) $(ZSHCOMP)
	install -m 755 .build/release/vmtools $(BIN)/vmtools
	for c in $(COMMANDS); do ln -sf vmtools $(BIN)/$$c; done
	install -m 644 etc/vmtools.conf $(SHARE)/vmtools.conf
	install -m 644 etc/templates/*.tpl $(SHARE)/templates/
	install -m 644 etc/images/*.image $(SHARE)/images/
	install -m 644 Docs/*.1 $(MAN)/man1/
	install -m 644 Docs/*.5 $(MAN)/man5/
	install -m 644 Docs/*.7 $(MAN)/man7/
	install -m 644 completions/vmtools.bash $(BASHCOMP)/vmtools
	for c in $(COMMANDS); do ln -sf vmtools $(BASHCOMP)/$$c; done
	install -m 644 completions/vmtools.fish $(FISHCOMP)/vmtools.fish
	for c in $(COMMANDS); do ln -sf vmtools.fish $(FISHCOMP)/$$c.fish; done
	install -m 644 completions/_vmtools $(ZSHCOMP)/_vmtools

uninstall:
	rm -f $(BIN)/vmtools $(SHARE)/vmtools.conf $(BASHCOMP)/vmtools $(FISHCOMP)/vmtools.fish $(ZSHCOMP)/_vmtools
	for c in $(COMMANDS); do rm -f $(BIN)/$$c $(BASHCOMP)/$$c $(FISHCOMP)/$$c.fish $(MAN)/man1/$$c.1; done
	rm -f $(MAN)/man1/vmtools.1 $(MAN)/man5/vm.settings.5 $(MAN)/man5/vmtools.conf.5 $(MAN)/man7/vmtools.7
	for t in etc/templates/*.tpl; do rm -f $(SHARE)/templates/$$(basename $$t); done
	for i in etc/images/*.image; do rm -f $(SHARE)/images/$$(basename $$i); done
	-rmdir $(SHARE)/templates $(SHARE)/images $(SHARE)
