# Postern - the one build file. `make` builds, `make run` starts a
# development instance, `make test` runs every test, `make asan` runs them
# under AddressSanitizer and UndefinedBehaviorSanitizer, `make bench`
# compares with Postfix, `make fuzz` runs the parsers' libFuzzer targets,
# `make install` installs on a production host, `make uninstall` removes
# it again (keeping the queue and the mailboxes).

.DEFAULT_GOAL := all

CC      ?= cc
SAN     ?=
ifeq ($(SAN),1)
BUILD   := build/asan
BIN     := build/asan/bin
OPT     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD   := build/release
BIN     := bin
OPT     := -O2 -D_FORTIFY_SOURCE=2
endif

CFLAGS  := -std=gnu11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -fstack-protector-strong -Icommon -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(OPT) $(EXTRA_LDFLAGS)
LIBS    := -lssl -lcrypto -llmdb

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
LIBCOMMON  := $(BUILD)/libpostern.a

# Each process directory: main.c is the entry point, the other files are
# modules that unit tests may link too.
define process
$(1)_SRC := $$(filter-out $(2)/main.c,$$(wildcard $(2)/*.c))
$(1)_OBJ := $$($(1)_SRC:%.c=$$(BUILD)/%.o)
$$(BIN)/$(3): $$(BUILD)/$(2)/main.o $$($(1)_OBJ) $$(LIBCOMMON) | $$(BIN)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(eval $(call process,MASTER,master,postern))
$(eval $(call process,SMTPD,smtpd,smtpd))
$(eval $(call process,QMGR,queue-mgr,queue-mgr))
$(eval $(call process,RESOLVER,resolver,resolver))
$(BIN)/resolver: LIBS += -lunbound
# auth/: the password checker for SMTP AUTH (libcrypt, hashing threads)
$(eval $(call process,AUTH,auth,auth))
$(BIN)/auth: LIBS += -lcrypt -lpthread
# deliver/: the process and the SMTP client engine; its modules are linked
# into the unit tests and the smtpc-drive test driver too.
$(eval $(call process,DELIVER,deliver,deliver))
$(BUILD)/tests/%.o: CFLAGS += -Ideliver
$(BUILD)/smtpc-drive: $(BUILD)/tests/tools/smtpc-drive.o $(DELIVER_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
# qinject: fills a queue through the pickup socket, for scripts/bench-queue
$(BUILD)/qinject: $(BUILD)/tests/tools/qinject.o $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
# deliver/local/: the local delivery role (Maildir); it shares deliver's
# D_JOB parser (job.c)
LOCAL_SRC := $(filter-out deliver/local/main.c,$(wildcard deliver/local/*.c))
LOCAL_OBJ := $(LOCAL_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/deliver/local/%.o: CFLAGS += -Ideliver
$(BIN)/local: $(BUILD)/deliver/local/main.o $(LOCAL_OBJ) $(BUILD)/deliver/job.o $(LIBCOMMON) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
# qdump: the stored state of one message, for the scheduler's tests
$(BUILD)/qdump: $(BUILD)/tests/tools/qdump.o $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# jailprobe: a role's jail and privilege drop, tried from inside (test_jail.py)
$(BUILD)/jailprobe: $(BUILD)/tests/tools/jailprobe.o $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

TOOLS := mailq sendmail posternctl
# sendmail's -bp, -q and -bs: tools/sendmail_bs.c
$(BIN)/sendmail: $(BUILD)/tools/sendmail.o $(BUILD)/tools/sendmail_bs.o $(LIBCOMMON) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS)
# posternctl's commands beyond flush live in tools/posternctl_*.c
POSTERNCTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/posternctl_*.c))
$(BIN)/posternctl: $(BUILD)/tools/posternctl.o $(POSTERNCTL_OBJ) $(LIBCOMMON) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS)
$(BIN)/%: $(BUILD)/tools/%.o $(LIBCOMMON) | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS)
# reload-maps asks the master through its pid file and reload verdict
$(BIN)/posternctl: $(BUILD)/master/reload.o $(BUILD)/master/pidfile.o \
                   $(BUILD)/master/status.o
# posternctl passwd (tools/posternctl_passwd.c): yescrypt through libcrypt
$(BIN)/posternctl: LIBS += -lcrypt

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/unit-tests: $(UNIT_OBJ) $(QMGR_OBJ) $(SMTPD_OBJ) $(RESOLVER_OBJ) $(DELIVER_OBJ) $(AUTH_OBJ) $(LOCAL_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lunbound -lcunit -lcrypt -lpthread

PROGRAMS := $(BIN)/postern $(BIN)/smtpd $(BIN)/queue-mgr $(BIN)/resolver $(BIN)/deliver $(BIN)/auth $(BIN)/local $(TOOLS:%=$(BIN)/%)

all: $(PROGRAMS) $(BUILD)/unit-tests $(BUILD)/smtpc-drive $(BUILD)/qdump $(BUILD)/jailprobe $(BUILD)/qinject

$(LIBCOMMON): $(COMMON_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BIN):
	mkdir -p $@

deps:
	scripts/deps

run: deps
	$(MAKE) all
	scripts/run-dev

test: deps
	$(MAKE) all
	BIN=$(BIN) UNIT=$(BUILD)/unit-tests tests/run

test-long: deps
	$(MAKE) all
	BIN=$(BIN) UNIT=$(BUILD)/unit-tests LONG=1 tests/run

asan: deps
	$(MAKE) SAN=1 all
	BIN=build/asan/bin UNIT=build/asan/unit-tests SAN=1 tests/run

bench: deps
	$(MAKE) all
	scripts/bench
	[ "$${BENCH_LOCAL:-1}" = 0 ] || BIN=$(BIN) scripts/bench-local build/bench-latest.md
	[ "$${BENCH_LOCAL:-1}" = 0 ] || BIN=$(BIN) BENCH_LOCAL_JOURNAL=1 scripts/bench-local build/bench-latest.md
	[ "$${BENCH_QUEUE:-1}" = 0 ] || BIN=$(BIN) BUILD=$(BUILD) scripts/bench-queue

# PREFIX (default /usr/local), DESTDIR and UNITDIR are passed on (INSTALL)
install: all
	BIN=$(BIN) scripts/install install

uninstall:
	scripts/install uninstall

# libFuzzer targets of the common/ parsers, FUZZ_SECONDS each (default 30).
fuzz:
	tests/fuzz/run

clean:
	rm -rf build bin

.PHONY: all deps run test test-long asan bench install uninstall clean fuzz
-include $(shell find build -name '*.d' 2>/dev/null)
