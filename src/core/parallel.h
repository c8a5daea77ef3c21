/* parallel.h — the OpenMP threshold and thread-count helpers shared by the core and kernels.
 * Small work runs on one thread: spawning a team costs more than it saves. */
#ifndef NNL_PARALLEL_H
#define NNL_PARALLEL_H

#include <omp.h>

#ifndef NNL_PAR_MIN
#define NNL_PAR_MIN 32768
#endif

#endif
