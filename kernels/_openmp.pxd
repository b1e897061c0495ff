# OpenMP shim: the real runtime when the build has it, serial stubs otherwise,
# so the same driver code compiles both ways (after scikit-learn's _openmp_helpers).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FNN_HAVE_OPENMP 1
    #else
    #define FNN_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    static int omp_get_num_threads(void) { return 1; }
    #endif
    """
    bint FNN_HAVE_OPENMP
    int omp_get_max_threads() nogil
    int omp_get_thread_num() nogil
    int omp_get_num_threads() nogil
