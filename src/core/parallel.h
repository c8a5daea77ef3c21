/* parallel.h — the OpenMP threshold and thread-count helpers shared by the core and kernels.
 * Small work runs on one thread: spawning a team costs more than it saves. */
#ifndef NNL_PARALLEL_H
#define NNL_PARALLEL_H

#include <omp.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

/* Whether this CPU runs AVX-512F code (and the OS saves the zmm registers): kernels with an
 * AVX-512 path (target attributes, no -march flag) ask before taking it. */
static inline int nnl_cpu_avx512(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init(); /* a no-op after the first call; needed before constructors have run */
  return __builtin_cpu_supports("avx512f") != 0;
#else
  return 0;
#endif
}

#endif
