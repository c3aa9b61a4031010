/* simd.h — the attribute that compiles a hot row loop twice, for x86-64-v3
 * (AVX2 + FMA) and for the baseline; the loader picks the variant for the
 * running CPU. The baseline build only has 4-wide SSE2. */
#ifndef OSP_CORE_SIMD_H
#define OSP_CORE_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define ROW_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ROW_CLONES
#endif

#endif
