/* threads.c — one thread count for our OpenMP kernels and OpenBLAS.
 * OpenBLAS's OpenMP build runs inside libgomp's pool, so the two never oversubscribe. */
#include <stdlib.h>

#include "../nnlua.h"
#include "parallel.h"

extern void openblas_set_num_threads(int n);

void nnl_set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int nnl_get_num_threads(void) { return omp_get_max_threads(); }
