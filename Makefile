# osp — build, test, install.  `make` (CPU), `make CUDA=1` (CUDA backend),
# `make check`, `make check-asan`, `make fuzz`, `make install PREFIX=...`.
VERSION := 0.1.0
PREFIX ?= /usr/local
CUDA ?= 0

CC ?= gcc
comma := ,
CFLAGS ?= -O2
WARN := -Wall -Wextra -Werror
# -fno-math-errno: no math call sets errno (none is read), so sqrtf and the
# like compile to vector instructions in the row loops (AdamW's update ran
# scalar and took twice as long); the values are the same IEEE results.
# -ffp-contract=off: no fused multiply-adds the source does not write (GCC's
# default in ISO C mode; clang's is on), so AdamW and EMA stay bit-identical
# to their CUDA kernels and the AVX2 clones to the baseline code.
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fopenmp -fno-math-errno -ffp-contract=off -Ilibosp -Ilibosp/core \
               -Itools $(WARN) -DOSP_VERSION='"$(VERSION)"'
# OpenBLAS: Debian's OpenMP build (libopenblas0-openmp) where it is
# installed, linked by path with an rpath whatever the system's alternative
# for libopenblas.so.0 is. It runs a product on the kernels' own OpenMP team
# (B packed once, shared) where the pthreads build must be kept serial and
# the product split by hand (cpu_linalg.c): the Latte training step's GEMMs
# ran 4-5 % faster. Either build works (the code asks which it got).
OPENBLAS_OMP_DIR := $(patsubst %/,%,$(dir $(wildcard /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp/libopenblas.so.0)))
OPENBLAS := $(if $(OPENBLAS_OMP_DIR),-L$(OPENBLAS_OMP_DIR) -l:libopenblas.so.0 -Wl$(comma)-rpath$(comma)$(OPENBLAS_OMP_DIR),-lopenblas)
LDLIBS := -lmsgpackc -lcjson $(OPENBLAS) -lpng -lavformat -lavcodec -lswscale -lavutil -lm -lpthread
# OpenMPI (osp-train's data parallelism, libosp/train/dist.c), as its
# compiler wrapper reports it.
MPI_CFLAGS := $(shell mpicc --showme:compile)
BASE_CFLAGS += $(MPI_CFLAGS)
LDLIBS += $(shell mpicc --showme:link)
BUILD := build
BIN := bin
SAN ?=

ifeq ($(SAN),1)
BUILD := build-asan
BIN := bin-asan
CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC := $(shell find libosp -name '*.c' -not -path '*/cuda/*' | sort)
# EMU=1: the CUDA build run on the host (tests/cuemu): the backend's own
# code and kernels, with the CUDA runtime, cuBLASLt, cuDNN and the GPU's
# threads emulated, so `make EMU=1 test-cuda` runs on any machine.
EMU ?= 0
ifeq ($(EMU),1)
override CUDA := 1
endif
ifeq ($(CUDA),1)
# CUDA objects differ (-DOSP_CUDA): keep them out of the CPU build folders.
ifeq ($(origin BUILD),file)
BUILD := $(if $(filter 1,$(EMU)),build-emu,build-cuda)
BIN := $(if $(filter 1,$(EMU)),bin-emu,bin-cuda)
endif
NVCC ?= nvcc
CUDA_HOME ?= /usr/local/cuda
BASE_CFLAGS += -DOSP_CUDA -I$(CUDA_HOME)/include
LIB_SRC += $(shell find libosp -path '*/cuda/*' -name '*.c' | sort)
CU_SRC := $(wildcard kernels/*.cu)
ifeq ($(EMU),1)
LIB_SRC += $(filter-out tests/cuemu/test_%.c,$(wildcard tests/cuemu/*.c))
LDLIBS += -lstdc++
else
LDLIBS += -L$(CUDA_HOME)/lib64 -lcudart -lcublas -lcublasLt -lcudnn -lstdc++
endif
endif
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.o)
ifeq ($(EMU),1)
LIB_OBJ += $(BUILD)/tests/cuemu/threads.o
endif

TOOL_SRC := $(wildcard tools/osp-*.c)
TOOL_COMMON := $(wildcard tools/common/*.c)
TOOL_COMMON_OBJ := $(TOOL_COMMON:%.c=$(BUILD)/%.o)
TOOLS := $(TOOL_SRC:tools/%.c=$(BIN)/%)

TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_HELPERS := $(filter-out $(TEST_SRC),$(wildcard tests/unit/*.c))
TEST_HELPER_OBJ := $(TEST_HELPERS:%.c=$(BUILD)/%.o)
TESTS := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs the bats suites use to make their inputs (not tests themselves).
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))

.PHONY: all lib tools tests check check-asan test-cuda test-cuda-ops test-cuda-quick fuzz install deps demo bench clean print-ldlibs
# Objects that only pattern rules name would be deleted as intermediates.
.SECONDARY: $(TOOL_COMMON_OBJ) $(TEST_HELPER_OBJ) $(BUILD)/tests/fakedev/fake_device.o
all: lib tools

lib: $(BUILD)/libosp.a $(BUILD)/libosp.so
# The link line, for the benchmark Makefiles (bench/).
print-ldlibs:
	@echo '$(LDLIBS)'
tools: $(TOOLS)
tests: $(TESTS) $(TEST_TOOLS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

ifeq ($(EMU),1)
# Kernels as host C++: launches rewritten (translate.sh), cuemu.h first.
# -fno-strict-aliasing: kernels pun registers (bf16 pairs) as nvcc allows.
CUEMU_CXXFLAGS := -std=c++17 -O2 -fPIC -ffp-contract=off -fno-math-errno -fno-strict-aliasing \
  -DOSP_CUEMU -DOSP_CUDA -I$(CUDA_HOME)/include -Ilibosp -Ilibosp/core $(WARN) \
  -Wno-unknown-pragmas
$(BUILD)/kernels/%.cc: kernels/%.cu tests/cuemu/translate.sh
	@mkdir -p $(dir $@)
	tests/cuemu/translate.sh $< $@
$(BUILD)/kernels/%.cuh: kernels/%.cuh tests/cuemu/translate.sh
	@mkdir -p $(dir $@)
	tests/cuemu/translate.sh $< $@
$(BUILD)/kernels/%.o: $(BUILD)/kernels/%.cc $(patsubst %,$(BUILD)/%,$(wildcard kernels/*.cuh)) \
  $(wildcard libosp/backend/cuda/*.h) tests/cuemu/cuemu.h
	$(CXX) $(CUEMU_CXXFLAGS) -include tests/cuemu/cuemu.h -c $< -o $@
.SECONDARY: $(CU_SRC:%.cu=$(BUILD)/%.cc) $(patsubst %,$(BUILD)/%,$(wildcard kernels/*.cuh))
$(BUILD)/tests/cuemu/threads.o: tests/cuemu/threads.cc tests/cuemu/cuemu.h
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -c $< -o $@
# The emulator's own test of its threads.
$(BUILD)/tests/cuemu/test_threads.cc: tests/cuemu/test_threads.cu tests/cuemu/translate.sh
	@mkdir -p $(dir $@)
	tests/cuemu/translate.sh $< $@
$(BUILD)/tests/cuemu/test_threads: $(BUILD)/tests/cuemu/test_threads.cc tests/cuemu/cuemu.h \
  $(BUILD)/tests/cuemu/threads.o $(BUILD)/tests/cuemu/runtime.o
	$(CXX) $(CUEMU_CXXFLAGS) -include tests/cuemu/cuemu.h -o $@ $< $(BUILD)/tests/cuemu/threads.o \
	  $(BUILD)/tests/cuemu/runtime.o
# and of its cuBLASLt and cuDNN, each against plain definitions
$(BUILD)/tests/cuemu/test_%: tests/cuemu/test_%.c $(BUILD)/tests/cuemu/%.o
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $^ -lm
$(BUILD)/tests/cuemu/test_cudnn: $(BUILD)/tests/cuemu/cudnn_desc.o
CUEMU_TESTS := $(BUILD)/tests/cuemu/test_threads \
  $(patsubst tests/cuemu/%.c,$(BUILD)/tests/cuemu/%,$(wildcard tests/cuemu/test_*.c))
else
$(BUILD)/kernels/%.o: kernels/%.cu $(wildcard kernels/*.cuh) $(wildcard libosp/backend/cuda/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -Xcompiler -fPIC -Ilibosp -Ilibosp/core \
	  -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	  -gencode arch=compute_90,code=compute_90 -c $< -o $@
endif

$(BUILD)/libosp.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libosp.so: $(LIB_OBJ)
	$(CC) -shared -fopenmp $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/%: tools/%.c $(TOOL_COMMON_OBJ) $(BUILD)/libosp.a
	@mkdir -p $(BIN) $(BUILD)/tools
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itools -MMD -MP -MF $(BUILD)/tools/$*.d $(LDFLAGS) -o $@ $< \
	  $(TOOL_COMMON_OBJ) $(BUILD)/libosp.a $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libosp.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(BUILD)/libosp.a $(LDLIBS)

# The tools linked with a stand-in GPU (tests/fakedev/fake_device.c), so
# that `--device cuda` runs on every machine: tests/run-all.sh checks the
# device paths with them. CPU builds only.
ifneq ($(CUDA),1)
FAKEDEV_TOOLS := $(TOOL_SRC:tools/%.c=$(BUILD)/tests/fakedev/bin/%)
tests: $(FAKEDEV_TOOLS)
$(BUILD)/tests/fakedev/bin/%: tools/%.c $(TOOL_COMMON_OBJ) $(BUILD)/tests/fakedev/fake_device.o \
  $(BUILD)/libosp.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itools $(LDFLAGS) -o $@ $< $(TOOL_COMMON_OBJ) \
	  $(BUILD)/tests/fakedev/fake_device.o $(BUILD)/libosp.a $(LDLIBS)
endif

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HELPER_OBJ) $(BUILD)/libosp.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itests/unit -MMD -MP $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(BUILD)/libosp.a $(LDLIBS)

# The one test command (README, .ci/run): every C unit test and bats suite,
# ending with "N passed, N failed".
check: all tests
	@OSP_BIN=$(CURDIR)/$(BIN) OSP_TEST_BUILD=$(CURDIR)/$(BUILD) tests/run-all.sh

# The CUDA parity suite (tests/cuda/run.sh): every op on the GPU against
# the CPU, then the model fixtures through the CUDA tools. Builds with
# CUDA=1; prints a skip line and succeeds where no GPU is usable.
# test-cuda-ops: the op parity alone (a minute emulated).
# test-cuda-quick: the op parity, gpu_bench at small shapes, and the bats
# cases tagged cuda-quick (a fixture of each model and metric, the trainers
# against the CPU; a few minutes emulated, what CI runs with EMU=1).
# Emulated, the model suites take up to minutes a case: a longer timeout.
ifeq ($(CUDA),1)
test-cuda test-cuda-quick: all tests $(BUILD)/tests/cuda/parity $(CUEMU_TESTS) $(BUILD)/bench/gpu_bench
	@OSP_BIN=$(CURDIR)/$(BIN) OSP_TEST_BUILD=$(CURDIR)/$(BUILD) \
	  $(if $(filter 1,$(EMU)),BATS_TEST_TIMEOUT=900) tests/cuda/run.sh \
	  $(if $(filter test-cuda-quick,$@),--quick)
test-cuda-ops: $(BIN)/osp-info $(BUILD)/tests/cuda/parity $(CUEMU_TESTS)
	@OSP_BIN=$(CURDIR)/$(BIN) OSP_TEST_BUILD=$(CURDIR)/$(BUILD) tests/cuda/run.sh --ops-only
else
test-cuda test-cuda-ops test-cuda-quick:
	$(MAKE) CUDA=1 $@
endif

# The GPU benchmark program bench/gpu.sh runs (CUDA builds only).
$(BUILD)/bench/gpu_bench: bench/gpu/gpu_bench.c bench/gpu/conv_layout.c bench/gpu/conv_layout.h \
  bench/bench_util.c $(BUILD)/libosp.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Ibench $(LDFLAGS) -o $@ bench/gpu/gpu_bench.c \
	  bench/gpu/conv_layout.c bench/bench_util.c $(BUILD)/libosp.a $(LDLIBS)

$(BUILD)/tests/cuda/%: tests/cuda/%.c $(TEST_HELPER_OBJ) $(BUILD)/libosp.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) \
	  $(BUILD)/libosp.a $(LDLIBS)

# The same suites under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) SAN=1 check

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
# The library is instrumented once into an archive, so each fuzzer links
# only the objects it uses; UB aborts so libFuzzer records it as a crash.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fopenmp -Ilibosp -Ilibosp/core $(MPI_CFLAGS) \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz: $(FUZZERS)
build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libosp.a: $(LIB_SRC:%.c=build-fuzz/%.o)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libosp.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libosp.a $(LDLIBS)

# Text to video with every tool on tiny random models (examples/demo.sh).
demo: all $(TEST_TOOLS)
	OSP_BIN=$(CURDIR)/$(BIN) OSP_TEST_BUILD=$(CURDIR)/$(BUILD) examples/demo.sh demo.mp4

bench: all
	$(MAKE) -C bench

deps:
	@tests/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/osp $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libosp.a $(DESTDIR)$(PREFIX)/lib
	install -m 755 $(BUILD)/libosp.so $(DESTDIR)$(PREFIX)/lib
	cd libosp && find . -name '*.h' -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/include/osp/{} \;
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBS_PRIVATE@|$(LDLIBS) -lgomp|' libosp/libosp.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libosp.pc
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 man/man5/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
	for f in completions/*.bash; do install -m 644 $$f \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$(basename $$f .bash); done
	install -m 644 completions/_osp* $(DESTDIR)$(PREFIX)/share/zsh/site-functions

clean:
	rm -rf build build-asan build-fuzz build-cuda build-emu bin bin-asan bin-cuda bin-emu

-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)
