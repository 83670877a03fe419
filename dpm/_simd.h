/*
 * Run-time choice of AVX2 code for the kernels (plain C, any compiler).
 *
 * A kernel written once as a macro body is compiled twice: a portable
 * function, and with GCC or Clang on x86 a copy marked DPM_AVX2_TARGET that
 * the compiler may vectorise with AVX2.  dpm_have_avx2() tells at run time
 * whether the processor (and the operating system) can run the copy.  A
 * build that already targets AVX2 (-mavx2 or -march=...) uses it directly;
 * other compilers and processors only ever see the portable function (the
 * copies use GCC/Clang extensions).  Setting DPM_NO_AVX2=1 in the
 * environment chooses the portable code everywhere (dpm._cpu.have_avx2
 * reads the same function).
 */
#ifndef DPM_SIMD_H
#define DPM_SIMD_H

#include <stdlib.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX2__)
#define DPM_HAVE_AVX2 1          /* the whole build targets AVX2 */
#define DPM_AVX2_TARGET
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define DPM_HAVE_AVX2 1          /* an AVX2 copy, chosen at run time */
#define DPM_AVX2_CHECK 1
#define DPM_AVX2_TARGET __attribute__((target("avx2")))
#endif

/* 1 if the DPM_AVX2_TARGET copies and the _avx2 builds can run here and
 * are wanted, 0 otherwise.  DPM_NO_AVX2 set to anything but "" or "0" in the
 * environment makes it 0, so the portable code runs (to check that both give
 * the same results; in a whole build that targets AVX2 the portable code is
 * AVX2 code too). */
static int dpm_have_avx2(void)
{
    const char *off = getenv("DPM_NO_AVX2");
    if (off != NULL && off[0] != '\0' && strcmp(off, "0") != 0)
        return 0;
#if defined(DPM_AVX2_CHECK)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#elif defined(DPM_HAVE_AVX2)
    return 1;
#else
    return 0;
#endif
}

#endif /* DPM_SIMD_H */
