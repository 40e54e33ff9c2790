// Convolutions over Z_2^64 (wrapping 64-bit products and sums), PyTorch semantics without
// bias: x is C×H×W, w is [out, in/groups, kh, kw], y is out×OH×OW. Unsigned overflow wraps in
// CUDA C++ as in Rust's wrapping_mul/wrapping_add, so every sum is the ring's whatever its
// order. Compiled at run time by NVRTC (runtime/src/backend/cuda.rs). geometry.rs's `emulate`
// and limb_route.rs are these kernels' arithmetic on the CPU, tested against kernels::conv.
typedef unsigned long long u64;
#define TILE 16

// Implicit GEMM per group g (blockIdx.z): Y_g = W_g · col(X_g), W_g cout_g × K with
// K = cin_g·kh·kw, col(X_g) K × OH·OW gathered straight from x (no im2col in memory).
// 16×16 tiles of W_g and col(X_g) in shared memory; each thread owns one output element.
extern "C" __global__ void conv_u64(const u64* __restrict__ x, const u64* __restrict__ w,
                                    u64* __restrict__ y, int h, int wd, int cin_g,
                                    int cout_g, int kh, int kw, int sh, int sw, int dh, int dw,
                                    int pt, int pl, int oh, int ow) {
    __shared__ u64 ws[TILE][TILE];
    __shared__ u64 xs[TILE][TILE];
    const int g = blockIdx.z;
    const int taps = kh * kw, k = cin_g * taps, plane = oh * ow;
    const int row = blockIdx.y * TILE + threadIdx.y;  // output channel within the group
    const int col = blockIdx.x * TILE + threadIdx.x;  // output pixel
    const u64* wg = w + (size_t)g * cout_g * k;
    const u64* xg = x + (size_t)g * cin_g * h * wd;
    const int oy = col / ow, ox = col % ow;
    u64 acc = 0ull;
    for (int t = 0; t < k; t += TILE) {
        const int wk = t + threadIdx.x, xk = t + threadIdx.y;
        ws[threadIdx.y][threadIdx.x] =
            (row < cout_g && wk < k) ? wg[(size_t)row * k + wk] : 0ull;
        u64 v = 0ull;
        if (xk < k && col < plane) {
            const int ci = xk / taps, ky = (xk / kw) % kh, kx = xk % kw;
            const int iy = oy * sh + ky * dh - pt, ix = ox * sw + kx * dw - pl;
            if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                v = xg[((size_t)ci * h + iy) * wd + ix];
            }
        }
        xs[threadIdx.y][threadIdx.x] = v;
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE; ++p) {
            acc += ws[threadIdx.y][p] * xs[p][threadIdx.x];
        }
        __syncthreads();
    }
    if (row < cout_g && col < plane) {
        y[((size_t)g * cout_g + row) * plane + col] = acc;
    }
}

// Depthwise (one input and one output channel per group): channel blockIdx.y, one thread
// per output pixel, the taps applied directly (a 16-row GEMM tile would be 1/16 used).
extern "C" __global__ void depthwise_u64(const u64* __restrict__ x, const u64* __restrict__ w,
                                         u64* __restrict__ y, int h, int wd, int kh, int kw,
                                         int sh, int sw, int dh, int dw, int pt, int pl,
                                         int oh, int ow) {
    const int ch = blockIdx.y;
    const int p = blockIdx.x * blockDim.x + threadIdx.x;
    const int plane = oh * ow;
    if (p >= plane) {
        return;
    }
    const int oy = p / ow, ox = p % ow;
    const u64* src = x + (size_t)ch * h * wd;
    const u64* taps = w + (size_t)ch * kh * kw;
    u64 acc = 0ull;
    for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * sh + ky * dh - pt;
        if (iy < 0 || iy >= h) {
            continue;
        }
        for (int kx = 0; kx < kw; ++kx) {
            const int ix = ox * sw + kx * dw - pl;
            if (ix >= 0 && ix < wd) {
                acc += taps[ky * kw + kx] * src[(size_t)iy * wd + ix];
            }
        }
    }
    y[(size_t)ch * plane + p] = acc;
}

// The limb route (runtime/src/backend/limb_route.rs, whose functions of the same names are
// these kernels on the CPU): 16-bit limbs as doubles for cuBLAS DGEMMs, then back to the ring.
#define LIMBS 4

// Limb l of v[i] at out[l·len + i].
extern "C" __global__ void split_limbs(const u64* __restrict__ v, double* __restrict__ out,
                                       long long len) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) {
        return;
    }
    const u64 e = v[i];
    for (int l = 0; l < LIMBS; ++l) {
        out[l * len + i] = (double)((e >> (16 * l)) & 0xffffull);
    }
}

// Group g's im2col matrix at output pixels c0..c0+cols, limb l of row r (blockIdx.y) and
// column c at out[(l·k + r)·cols + c]; the gather is conv_u64's.
extern "C" __global__ void im2col_limbs(const u64* __restrict__ x, double* __restrict__ out,
                                        int h, int wd, int cin_g, int kh, int kw, int sh,
                                        int sw, int dh, int dw, int pt, int pl, int oh, int ow,
                                        int g, int c0, int cols) {
    const int r = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    const int taps = kh * kw, k = cin_g * taps, col = c0 + c;
    const u64* xg = x + (size_t)g * cin_g * h * wd;
    const int oy = col / ow, ox = col % ow;
    const int ci = r / taps, ky = (r / kw) % kh, kx = r % kw;
    const int iy = oy * sh + ky * dh - pt, ix = ox * sw + kx * dw - pl;
    u64 e = 0ull;
    if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
        e = xg[((size_t)ci * h + iy) * wd + ix];
    }
    for (int l = 0; l < LIMBS; ++l) {
        out[((size_t)l * k + r) * cols + c] = (double)((e >> (16 * l)) & 0xffffull);
    }
}

// y[r·plane + c0 + c] = Σ_s p[(s·m + r)·cols + c] · 2^(16s) mod 2^64, y one group's output;
// each p is an exact integer below 2^53.
extern "C" __global__ void recombine_limbs(const double* __restrict__ p, u64* __restrict__ y,
                                           int m, int plane, int c0, int cols) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)m * cols) {
        return;
    }
    const int r = (int)(i / cols), c = (int)(i % cols);
    u64 acc = 0ull;
    for (int s = 0; s < LIMBS; ++s) {
        acc += ((u64)p[((size_t)s * m + r) * cols + c]) << (16 * s);
    }
    y[(size_t)r * plane + c0 + c] = acc;
}
