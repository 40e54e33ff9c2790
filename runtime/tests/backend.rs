//! The linear layers' backend: the choice, and the CUDA kernel's algorithm. Without a CUDA
//! driver (CI, the development machines) the device test says that it skipped and why;
//! `auto` must pick the CPU and `cuda` must fail with the reason. NVRTC needs no GPU:
//! `tools/setup.sh` installs it, so the kernel is compiled here too.

use ksnn_runtime::backend::{self, BackendChoice};

fn driver() -> bool {
    #[cfg(feature = "cuda")]
    return ksnn_runtime::backend::cuda::driver_present();
    #[cfg(not(feature = "cuda"))]
    false
}

#[cfg(feature = "cuda")]
fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut g = ksnn_formats::example::SplitMix(seed);
    (0..n).map(|_| g.next_u64()).collect()
}

#[cfg(feature = "cuda")]
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 17, 5),
    (16, 16, 16),
    (17, 33, 15),
    (64, 300, 129),
    (5, 1000, 3),
];

#[test]
fn auto_picks_the_cpu_without_a_driver_and_cuda_says_why() {
    if driver() {
        println!("skipped: a CUDA driver is present, so `auto` may pick the device");
        return;
    }
    let line = backend::install(BackendChoice::Auto).expect("auto never fails");
    assert!(line.starts_with("linear layers on the CPU"), "{line}");
    assert!(line.contains("auto"), "{line}");
    assert!(backend::installed().is_none());
    let e = backend::install(BackendChoice::Cuda)
        .unwrap_err()
        .to_string();
    #[cfg(feature = "cuda")]
    assert!(e.contains("no CUDA driver") && e.contains("libcuda"), "{e}");
    #[cfg(not(feature = "cuda"))]
    assert!(e.contains("without the `cuda` feature"), "{e}");
    println!("auto: {line}\ncuda: {e}");
}

/// Runs `product` on random words for every shape and checks it against the u64 loop.
#[cfg(feature = "cuda")]
fn equals_the_ring_product(
    what: &str,
    seed: u64,
    mut product: impl FnMut(&[u64], &[u64], &mut [u64], (usize, usize, usize)),
) {
    for (i, &(m, k, n)) in SHAPES.iter().enumerate() {
        let s = seed + 3 * i as u64;
        let (w, x, start) = (words(s, m * k), words(s + 1, k * n), words(s + 2, m * n));
        let (mut want, mut got) = (start.clone(), start);
        ksnn_runtime::kernels::gemm::tiled::gemm(&w, &x, &mut want, m, k, n);
        product(&w, &x, &mut got, (m, k, n));
        assert_eq!(got, want, "{what}: {m}x{k}x{n}");
    }
}

/// The kernel's tiling, emulated on the CPU, equals the u64 loop bit for bit (k not a
/// multiple of the tile, rows and columns past the grid's edge).
#[cfg(feature = "cuda")]
#[test]
fn the_kernels_tiling_equals_the_ring_product() {
    equals_the_ring_product("emulated", 0, ksnn_runtime::backend::cuda::emulate);
}

#[cfg(feature = "cuda")]
#[test]
fn nvrtc_compiles_the_kernel() {
    if !ksnn_runtime::backend::cuda::nvrtc_present() {
        println!("skipped: no NVRTC library (libnvrtc.so), so the kernel cannot be compiled here");
        return;
    }
    let ptx = ksnn_runtime::backend::cuda::compile().expect("the kernel compiles");
    let src = ptx.to_src();
    assert!(
        src.contains(".entry gemm_u64"),
        "no gemm_u64 entry in the PTX"
    );
    // 64-bit multiply-adds, the ring's arithmetic (not a float or 32-bit product).
    assert!(
        src.contains("mul.lo.s64") || src.contains("mad.lo.s64"),
        "{src}"
    );
    println!("NVRTC compiled gemm_u64: {} bytes of PTX", src.len());
}

#[cfg(feature = "cuda")]
#[test]
fn the_device_equals_the_ring_product() {
    use ksnn_runtime::backend::Device;
    if !driver() {
        println!("skipped: no CUDA driver (libcuda.so.1 is not on the loader's path)");
        return;
    }
    let gpu = match ksnn_runtime::backend::cuda::Cuda::open(0) {
        Ok(g) => g,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    equals_the_ring_product(&gpu.describe(), 100, |w, x, c, mkn| {
        gpu.gemm(w, x, c, mkn).expect("the device runs")
    });
}
