//! Data parallelism for the protocols' per-element arithmetic, in one place.
//!
//! Every helper here computes each element by the same pure function of its index as a plain
//! loop would, so the result, and every message built from it, is the same whatever the
//! thread count or chunking. Randomness is never drawn inside these closures: streams are
//! sequential, so protocols draw first and compute in parallel after (a closure must not
//! touch a `prf::Stream`, a thread-local, or the network). Whether a loop goes parallel is
//! decided by its size alone, never by values: below [`MIN_LEN`] the hand-off to the pool
//! (microseconds) costs more than it saves.

use rayon::prelude::*;

/// Work items (elements, or bytes of variable-width segments) below which a loop stays on
/// the calling thread; also the smallest chunk handed to one rayon task.
pub const MIN_LEN: usize = 1 << 13;

fn parallel(len: usize) -> bool {
    len >= MIN_LEN
}

/// `(0..n).map(f).collect()`, in parallel chunks for large `n`.
pub fn map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    map_weighted(n, n, f)
}

/// [`map`] for elements that cost `work / n` items each (a comparison of 63 bits costs 63):
/// the threshold and the chunks count items, not elements.
pub fn map_weighted<T: Send>(
    n: usize,
    work: usize,
    f: impl Fn(usize) -> T + Sync + Send,
) -> Vec<T> {
    if parallel(work) {
        let per = (work / n.max(1)).max(1);
        (0..n)
            .into_par_iter()
            .with_min_len(MIN_LEN.div_ceil(per))
            .map(f)
            .collect()
    } else {
        (0..n).map(f).collect()
    }
}

/// Runs `background` on the pool while the calling thread runs `here`, and returns both
/// results: a protocol draws randomness that no message depends on while it waits for the
/// network. `here` may block on a receive (it stays on the calling thread, never on a pool
/// worker); `background` must not. Below [`MIN_LEN`] items of `work` both run in turn here.
pub fn beside<A: Send, B>(
    work: usize,
    background: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    if !parallel(work) {
        let a = background();
        return (a, here());
    }
    let mut a = None;
    let b = rayon::in_place_scope(|s| {
        s.spawn(|_| a = Some(background()));
        here()
    });
    (a.expect("the scope waits for its task"), b)
}

/// `a.iter().zip(b).map(f).collect()`, in parallel for long vectors: the element-wise ring
/// operations. Like `zip`, it stops at the shorter input.
pub fn zip_map<A: Sync, B: Sync, T: Send>(
    a: &[A],
    b: &[B],
    f: impl Fn(&A, &B) -> T + Sync + Send,
) -> Vec<T> {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    if parallel(n) {
        a.par_iter()
            .zip(b)
            .with_min_len(MIN_LEN)
            .map(|(x, y)| f(x, y))
            .collect()
    } else {
        a.iter().zip(b).map(|(x, y)| f(x, y)).collect()
    }
}

/// `f(&mut a[i], &b[i])` for every `i` below both lengths, in parallel chunks for long
/// slices.
pub fn zip_mut<A: Send, B: Sync>(a: &mut [A], b: &[B], f: impl Fn(&mut A, &B) + Sync + Send) {
    let n = a.len().min(b.len());
    let (a, b) = (&mut a[..n], &b[..n]);
    let run = |a: &mut [A], b: &[B]| a.iter_mut().zip(b).for_each(|(x, y)| f(x, y));
    if parallel(n) {
        a.par_chunks_mut(MIN_LEN)
            .zip(b.par_chunks(MIN_LEN))
            .for_each(|(a, b)| run(a, b));
    } else {
        run(a, b);
    }
}

/// `f(start, chunk)` over consecutive chunks of `out` (`start`: the index of the chunk's
/// first element): chunks of [`MIN_LEN`] in parallel for long slices, else the whole slice
/// as one chunk. For loops that carry state from element to element within a chunk.
pub fn chunks_mut<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if parallel(out.len()) {
        out.par_chunks_mut(MIN_LEN)
            .enumerate()
            .for_each(|(c, chunk)| f(c * MIN_LEN, chunk));
    } else {
        f(0, out);
    }
}

/// `f(i, segment i)` for variable-width segments of `out`: element `i` owns
/// `out[offsets[i]..offsets[i + 1]]` (`offsets` ascending from 0 to `out.len()`, one longer
/// than the element count). Chunks of whole elements of about [`MIN_LEN`] items each go to
/// the pool when `out` is long, so the split follows the work, not the element count.
pub fn for_each_segment<T: Send>(
    out: &mut [T],
    offsets: &[usize],
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let n = offsets.len() - 1;
    let run = |elements: std::ops::Range<usize>, mut rest: &mut [T]| {
        for i in elements {
            let (seg, tail) = rest.split_at_mut(offsets[i + 1] - offsets[i]);
            f(i, seg);
            rest = tail;
        }
    };
    if !parallel(out.len()) {
        run(0..n, out);
        return;
    }
    // Cut at element boundaries once a piece holds MIN_LEN items.
    let mut pieces = Vec::new();
    let (mut rest, mut first) = (out, 0);
    while first < n {
        let mut last = first + 1;
        while last < n && offsets[last] - offsets[first] < MIN_LEN {
            last += 1;
        }
        let (piece, tail) = rest.split_at_mut(offsets[last] - offsets[first]);
        pieces.push((first..last, piece));
        rest = tail;
        first = last;
    }
    pieces
        .into_par_iter()
        .for_each(|(elements, piece)| run(elements, piece));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes on both sides of the threshold, and ones that leave a short last chunk.
    const SIZES: [usize; 6] = [0, 1, 100, MIN_LEN - 1, MIN_LEN, 5 * MIN_LEN + 3];

    fn f(i: usize) -> u64 {
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
    }

    #[test]
    fn element_wise_helpers_equal_their_loops() {
        for n in SIZES {
            let expect: Vec<u64> = (0..n).map(f).collect();
            assert_eq!(map(n, f), expect, "map {n}");
            assert_eq!(map_weighted(n, 63 * n, f), expect, "map_weighted {n}");
            let b: Vec<u64> = (0..n + 2).map(|i| f(i + 7)).collect();
            let sum: Vec<u64> = expect.iter().zip(&b).map(|(x, y)| x ^ y).collect();
            assert_eq!(zip_map(&expect, &b, |x, y| x ^ y), sum, "zip_map {n}");
            let mut a = expect.clone();
            zip_mut(&mut a, &b, |x, y| *x ^= *y);
            assert_eq!(a, sum, "zip_mut {n}");
            let mut c = vec![0u64; n];
            chunks_mut(&mut c, |first, chunk| {
                chunk
                    .iter_mut()
                    .enumerate()
                    .for_each(|(k, v)| *v = f(first + k))
            });
            assert_eq!(c, expect, "chunks_mut {n}");
        }
    }

    #[test]
    fn segments_are_the_elements_widths() {
        for n in [0, 1, 3, 200, 2000, 9000] {
            // Widths 0..=70, so some segments are empty and many exceed one item.
            let widths: Vec<usize> = (0..n).map(|i| (i * 7) % 71).collect();
            let mut offsets = vec![0];
            for w in &widths {
                offsets.push(offsets.last().unwrap() + w);
            }
            let mut out = vec![u64::MAX; *offsets.last().unwrap()];
            for_each_segment(&mut out, &offsets, |i, seg| {
                assert_eq!(seg.len(), widths[i]);
                seg.iter_mut()
                    .enumerate()
                    .for_each(|(k, v)| *v = (i * 1000 + k) as u64);
            });
            let expect: Vec<u64> = widths
                .iter()
                .enumerate()
                .flat_map(|(i, &w)| (0..w).map(move |k| (i * 1000 + k) as u64))
                .collect();
            assert_eq!(out, expect, "{n} segments");
        }
    }

    #[test]
    fn beside_returns_both_results_in_order() {
        for work in [0, MIN_LEN] {
            let (a, b) = beside(work, || map(work, f), || f(3));
            assert_eq!(a, (0..work).map(f).collect::<Vec<_>>());
            assert_eq!(b, f(3));
        }
    }
}
