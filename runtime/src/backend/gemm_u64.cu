// C += W·X over Z_2^64 (wrapping 64-bit products and sums), W m×k, X k×n, row-major.
// 16×16 tiles of W and X in shared memory; each thread owns one element of C. Unsigned
// overflow wraps in CUDA C++ as in Rust's wrapping_mul/wrapping_add, so the sum is the ring's
// whatever the order. Compiled at run time by NVRTC (runtime/src/backend/cuda.rs).
#define TILE 16
extern "C" __global__ void gemm_u64(const unsigned long long* __restrict__ w,
                                    const unsigned long long* __restrict__ x,
                                    unsigned long long* __restrict__ c,
                                    int m, int k, int n) {
    __shared__ unsigned long long ws[TILE][TILE];
    __shared__ unsigned long long xs[TILE][TILE];
    const int row = blockIdx.y * TILE + threadIdx.y;
    const int col = blockIdx.x * TILE + threadIdx.x;
    unsigned long long acc = 0ull;
    for (int t = 0; t < k; t += TILE) {
        const int wk = t + threadIdx.x, xk = t + threadIdx.y;
        ws[threadIdx.y][threadIdx.x] = (row < m && wk < k) ? w[(size_t)row * k + wk] : 0ull;
        xs[threadIdx.y][threadIdx.x] = (xk < k && col < n) ? x[(size_t)xk * n + col] : 0ull;
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE; ++p) {
            acc += ws[threadIdx.y][p] * xs[p][threadIdx.x];
        }
        __syncthreads();
    }
    if (row < m && col < n) {
        c[(size_t)row * n + col] += acc;
    }
}
