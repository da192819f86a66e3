# fuzz: `make fuzz` builds a libFuzzer target for each parser of untrusted
# input (fuzz/README.md) and runs each for FUZZ_SECONDS on a copy of its
# seed corpus (fuzz/corpus/<name>/, in the build tree under fuzz/run/<name>/).
# It fails when a target finds a crash, a leak, undefined behaviour or an
# error message that does not name its file. `make check` runs the same for
# 3 s each (tests/fuzz/fuzz_smoke.test: `make fuzz FUZZ_SECONDS=3`, skipped
# only when clang's libFuzzer is missing).
#
# The targets need clang's libFuzzer (Debian: clang). The library sources
# ($(src_librtrain_la_SOURCES), one list with the library) are compiled with
# clang, instrumented for coverage and with ASan + UBSan, into
# fuzz/librtrain-fuzz.a; each target links what it uses from it, with the
# libraries configure found. MPI headers and libraries come from $(MPICC)
# (src/comm and the parallel HDF5 headers include mpi.h); no MPI is started.
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wno-unused-parameter
FUZZ_FLAGS = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048
# The HDF5 library (1.10.8) itself crashes on some crafted files
# (fuzz/findings/README.md): fuzz_hdf5 runs in fork mode, going on after
# such a crash; fuzz/hdf5-crashes then replays each crashing input and fails
# only on one whose stack does not start in libhdf5. rtrain's own HDF5
# findings are replayed as regression inputs instead (fuzz_replay).
FUZZ_HDF5_FLAGS = $(FUZZ_FLAGS) -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1
fuzz_names = csv idx config safetensors
fuzz_replay = hdf5:hdf5-zero-sample-dim hdf5:hdf5-huge-sample-size \
	hdf5:hdf5-inputs-alloc-message hdf5:hdf5-targets-size-overflow \
	hdf5:hdf5-declared-rows-oom hdf5:hdf5-node-cache-size config:config-long-path-no-file
fuzz_programs = fuzz/fuzz_csv fuzz/fuzz_hdf5 fuzz/fuzz_idx fuzz/fuzz_config \
	fuzz/fuzz_safetensors
fuzz_common = fuzz/fuzz.c fuzz/fuzz.h
fuzz_compile = $(FUZZ_CC) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) \
	`$(MPICC) --showme:compile 2>/dev/null` $(FUZZ_CFLAGS) $(PTHREAD_CFLAGS) $(FUZZ_SANITIZE)
fuzz_libs = $(RT_LIBS) `$(MPICC) --showme:link 2>/dev/null`

fuzz:
	@$(MAKE) $(AM_MAKEFLAGS) fuzz-probe
	@$(MAKE) $(AM_MAKEFLAGS) $(fuzz_programs)
	@failed=; for t in $(fuzz_names); do \
	  $(SHELL) $(srcdir)/fuzz/run-one $(srcdir) $$t $(FUZZ_FLAGS) \
	    || failed="$$failed $$t"; \
	done; \
	if ! $(SHELL) $(srcdir)/fuzz/run-one $(srcdir) hdf5 $(FUZZ_HDF5_FLAGS); then \
	  if test -z "`ls fuzz/run/hdf5/artifacts`"; then failed="$$failed hdf5"; \
	  else $(SHELL) $(srcdir)/fuzz/hdf5-crashes fuzz/run/hdf5/artifacts || failed="$$failed hdf5"; fi; \
	fi; \
	for r in $(fuzz_replay); do \
	  fuzz/fuzz_$${r%%:*} $(srcdir)/fuzz/findings/$${r#*:} >fuzz/run/replay.log 2>&1 \
	    || { cat fuzz/run/replay.log; failed="$$failed replay:$${r#*:}"; }; \
	done; \
	if test -n "$$failed"; then \
	  echo "make fuzz: FAILED:$$failed (reproducers: fuzz/run/<name>/artifacts/)"; exit 1; \
	fi; echo "make fuzz: $(fuzz_names) and hdf5 ran $(FUZZ_SECONDS) s each without a finding" \
	  "in rtrain; rtrain's earlier findings replayed"

# Fails with what to install when $(FUZZ_CC) cannot build a libFuzzer target.
fuzz-probe:
	@$(MKDIR_P) fuzz
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' \
	  > fuzz/probe.c
	@if $(FUZZ_CC) -fsanitize=fuzzer,address,undefined fuzz/probe.c -o fuzz/probe \
	    >/dev/null 2>&1; then rm -f fuzz/probe fuzz/probe.c; else \
	  rm -f fuzz/probe fuzz/probe.c; \
	  echo "make fuzz: '$(FUZZ_CC) -fsanitize=fuzzer' does not work here: install clang" \
	    "(Debian: apt-get install clang) or set FUZZ_CC to a clang with libFuzzer" >&2; \
	  exit 1; fi

fuzz/librtrain-fuzz.a: $(src_librtrain_la_SOURCES) $(rtraininclude_HEADERS) $(noinst_HEADERS)
	@rm -rf fuzz/obj && $(MKDIR_P) fuzz/obj
	@for f in $(src_librtrain_la_SOURCES); do \
	  case $$f in *.c) ;; *) continue ;; esac; \
	  o=fuzz/obj/`echo $$f | sed 's|/|_|g; s|\.c$$|.o|'`; \
	  echo "  CC(fuzz) $$f"; \
	  if test -f $$f; then s=$$f; else s=$(srcdir)/$$f; fi; \
	  $(fuzz_compile) -fsanitize=fuzzer-no-link -c -o $$o $$s || exit 1; \
	done
	$(AM_V_GEN)rm -f $@ && $(AR) cr $@ fuzz/obj/*.o && $(RANLIB) $@

fuzz/fuzz_csv: fuzz/fuzz_csv.c
fuzz/fuzz_hdf5: fuzz/fuzz_hdf5.c
fuzz/fuzz_idx: fuzz/fuzz_idx.c
fuzz/fuzz_config: fuzz/fuzz_config.c
fuzz/fuzz_safetensors: fuzz/fuzz_safetensors.c
$(fuzz_programs): $(fuzz_common) fuzz/librtrain-fuzz.a
	$(AM_V_CCLD)$(fuzz_compile) -fsanitize=fuzzer -o $@ $(srcdir)/$@.c \
	  $(srcdir)/fuzz/fuzz.c fuzz/librtrain-fuzz.a $(fuzz_libs)

clean-local: clean-fuzz
clean-fuzz:
	rm -rf fuzz/obj fuzz/run fuzz/librtrain-fuzz.a $(fuzz_programs) fuzz/probe fuzz/probe.c

.PHONY: fuzz fuzz-probe clean-fuzz
TESTS += tests/fuzz/fuzz_smoke.test
EXTRA_DIST += tests/fuzz/fuzz_smoke.test fuzz/README.md fuzz/run-one fuzz/hdf5-crashes fuzz/make_corpus.py fuzz/.gitignore \
	fuzz/fuzz.h fuzz/fuzz.c fuzz/fuzz_csv.c fuzz/fuzz_hdf5.c fuzz/fuzz_idx.c \
	fuzz/fuzz_config.c fuzz/fuzz_safetensors.c fuzz/corpus fuzz/findings
