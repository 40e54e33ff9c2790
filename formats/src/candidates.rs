//! Candidate block sizes (docs/original.md §3.4): the original's list per activation size, in its
//! order (duplicates included, ending with `0x1` identity and `1x0` zero), and the options a
//! channel of a real, possibly non-square activation may take. The eight base lists below
//! are copied from the spec; the other eight are derived by the spec's stated rules (8 from
//! 7, 28 from 14, 32 from 16, 112 from 56, 128/256/320/512 from 64). All sixteen were checked
//! entry by entry against the original file.

use alloc::vec::Vec;

use crate::spec::{Block, BlockKind};

/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L1: &[(u16, u16)] = &[(1, 1), (0, 1), (1, 0)];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L2: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (2, 2), (0, 1), (1, 0)];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L4: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (2, 2), (2, 4), (4, 2), (4, 4), (0, 1), (1, 0),];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L7: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1), (2, 3), (3, 2), (1, 7), (2, 4), (4, 2), (7, 1), (3, 3), (3, 4), (4, 3), (2, 7), (4, 4), (7, 2), (4, 7), (7, 4), (7, 7), (0, 1), (1, 0),];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L14: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1), (1, 5), (5, 1), (1, 6), (2, 3), (3, 2), (6, 1), (1, 7), (2, 4), (4, 2), (7, 1), (3, 3), (2, 5), (5, 2), (2, 6), (3, 4), (4, 3), (6, 2), (3, 5), (5, 3), (2, 7), (4, 4), (7, 2), (3, 6), (6, 3), (4, 5), (5, 4), (3, 7), (4, 6), (6, 4), (7, 3), (5, 5), (3, 9), (9, 3), (5, 6), (6, 5), (4, 7), (7, 4), (3, 12), (6, 6), (12, 4), (7, 7), (5, 10), (10, 5), (4, 15), (5, 12), (6, 10), (10, 6), (12, 5), (4, 14), (7, 7), (14, 4), (6, 12), (12, 6), (5, 14), (7, 10), (10, 7), (14, 5), (6, 14), (7, 12), (12, 7), (14, 6), (10, 10), (7, 14), (14, 7), (14, 14), (0, 1), (1, 0),];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L16: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1), (1, 5), (5, 1), (1, 6), (2, 3), (3, 2), (6, 1), (1, 8), (2, 4), (4, 2), (8, 1), (3, 3), (2, 5), (5, 2), (2, 6), (3, 4), (4, 3), (6, 2), (3, 5), (5, 3), (2, 8), (4, 4), (8, 2), (3, 6), (6, 3), (4, 5), (5, 4), (3, 8), (4, 6), (6, 4), (8, 3), (5, 5), (3, 9), (9, 3), (5, 6), (6, 5), (4, 8), (8, 4), (3, 12), (6, 6), (6, 8), (8, 6), (12, 4), (7, 7), (5, 10), (10, 5), (4, 15), (5, 12), (6, 10), (10, 6), (12, 5), (4, 16), (8, 8), (16, 4), (6, 12), (12, 6), (5, 16), (8, 10), (10, 8), (16, 5), (6, 16), (8, 12), (12, 8), (16, 6), (10, 10), (8, 16), (16, 8), (12, 12), (16, 16), (0, 1), (1, 0),];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L56: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1), (1, 5), (5, 1), (1, 7), (2, 3), (3, 2), (7, 1), (2, 4), (4, 2), (3, 3), (2, 5), (5, 2), (2, 7), (3, 4), (4, 3), (7, 2), (3, 5), (5, 3), (2, 8), (4, 4), (8, 2), (3, 7), (7, 3), (4, 5), (5, 4), (2, 12), (3, 8), (4, 7), (7, 4), (8, 3), (12, 2), (5, 5), (3, 9), (9, 3), (5, 7), (7, 5), (2, 14), (4, 8), (8, 4), (14, 2), (3, 12), (6, 6), (12, 3), (5, 8), (8, 5), (4, 12), (7, 8), (8, 7), (12, 4), (7, 7), (5, 10), (10, 5), (7, 9), (9, 7), (5, 12), (7, 10), (10, 7), (12, 5), (4, 14), (8, 8), (14, 4), (7, 12), (12, 7), (5, 15), (15, 5), (8, 10), (10, 8), (9, 9), (7, 14), (8, 12), (12, 8), (14, 7), (10, 10), (9, 12), (12, 9), (8, 14), (14, 8), (11, 11), (8, 14), (14, 8), (12, 12), (10, 14), (14, 10), (12, 14), (14, 12), (13, 13), (12, 14), (14, 12), (14, 14), (28, 28), (56, 56), (0, 1), (1, 0),];
/// Base list, as in the original's `block_sizes.py`.
#[rustfmt::skip]
const L64: &[(u16, u16)] = &[(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 4), (2, 2), (4, 1), (1, 5), (5, 1), (1, 6), (2, 3), (3, 2), (6, 1), (2, 4), (4, 2), (3, 3), (2, 5), (5, 2), (2, 6), (3, 4), (4, 3), (6, 2), (3, 5), (5, 3), (2, 8), (4, 4), (8, 2), (3, 6), (6, 3), (4, 5), (5, 4), (2, 12), (3, 8), (4, 6), (6, 4), (8, 3), (12, 2), (5, 5), (3, 9), (9, 3), (5, 6), (6, 5), (2, 16), (4, 8), (8, 4), (16, 2), (3, 12), (6, 6), (12, 3), (5, 8), (8, 5), (4, 12), (6, 8), (8, 6), (12, 4), (7, 7), (5, 10), (10, 5), (6, 9), (9, 6), (5, 12), (6, 10), (10, 6), (12, 5), (4, 16), (8, 8), (16, 4), (6, 12), (12, 6), (5, 15), (15, 5), (8, 10), (10, 8), (9, 9), (6, 16), (8, 12), (12, 8), (16, 6), (10, 10), (9, 12), (12, 9), (8, 14), (14, 8), (11, 11), (8, 16), (16, 8), (12, 12), (10, 16), (16, 10), (12, 14), (14, 12), (13, 13), (12, 16), (16, 12), (14, 14), (16, 16), (32, 32), (64, 64), (0, 1), (1, 0),];

/// Activation sizes that have a list.
pub const SIZES: &[u32] = &[
    1, 2, 4, 7, 8, 14, 16, 28, 32, 56, 64, 112, 128, 256, 320, 512,
];

fn blocks(pairs: &[(u16, u16)]) -> Vec<Block> {
    pairs.iter().map(|&(h, w)| Block(h, w)).collect()
}

/// `list` without its trailing `0x1 1x0`, then `extra`, then `0x1 1x0` again.
fn append(list: &[(u16, u16)], extra: &[(u16, u16)]) -> Vec<Block> {
    let mut out = blocks(&list[..list.len() - 2]);
    out.extend(blocks(extra));
    out.extend([Block::IDENTITY, Block::ZERO]);
    out
}

/// The original's list for a `size×size` activation, if it has one.
pub fn seed_list(size: u32) -> Option<Vec<Block>> {
    Some(match size {
        1 => blocks(L1),
        2 => blocks(L2),
        4 => blocks(L4),
        7 => blocks(L7),
        // "same as 7x7 with every 7 replaced by 8"
        8 => L7
            .iter()
            .map(|&(h, w)| Block(if h == 7 { 8 } else { h }, if w == 7 { 8 } else { w }))
            .collect(),
        14 => blocks(L14),
        16 => blocks(L16),
        // "the 14x14 list up to 14x14 with 6x7/7x6 added after 6x6 and 12x12 added before
        // 14x14; then 21x21, 28x28"
        28 => {
            let mut out = Vec::new();
            for &(h, w) in &L14[..L14.len() - 2] {
                if (h, w) == (14, 14) {
                    out.push(Block(12, 12));
                }
                out.push(Block(h, w));
                if (h, w) == (6, 6) {
                    out.extend([Block(6, 7), Block(7, 6)]);
                }
            }
            out.extend([Block(21, 21), Block(28, 28), Block::IDENTITY, Block::ZERO]);
            out
        }
        32 => append(L16, &[(24, 24), (32, 32)]),
        56 => blocks(L56),
        112 => append(L56, &[(112, 112)]),
        64 => blocks(L64),
        128 => append(L64, &[(128, 128)]),
        // "320x320 is identical to the 256 list"
        256 | 320 => append(L64, &[(128, 128), (256, 256)]),
        512 => append(L64, &[(128, 128), (256, 256), (512, 512)]),
        _ => return None,
    })
}

/// The list for an `h×w` activation (maps need not be square).
///
/// Rule: take the list of the smallest listed size ≥ max(h, w) (the 512 list beyond 512),
/// keep the blocks with `bh ≤ h` and `bw ≤ w`, drop repeated entries (first one kept, so the
/// file order stays). Identity and zero stay, last. A block taller or wider than the map
/// would cost the same DReLUs as one clipped to the map, so it only duplicates an option, and
/// [`Block::check`] rejects it in a program; after this filter every entry is valid for the
/// map and `Block::drelus(h, w)` is its real cost. On a square map of a listed size this is
/// the original's list without its duplicates.
pub fn for_shape(h: u32, w: u32) -> Vec<Block> {
    let side = h.max(w);
    let size = SIZES.iter().copied().find(|&s| s >= side).unwrap_or(512);
    let mut out: Vec<Block> = Vec::new();
    for b in seed_list(size).expect("a listed size") {
        let fits = match b.kind() {
            BlockKind::Sized { h: bh, w: bw } => bh <= h && bw <= w,
            _ => true,
        };
        if fits && !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

/// What one channel may choose (docs/original.md §3.4: the list without the `1x0` zero code,
/// which the knapsack never emits).
pub fn options(h: u32, w: u32) -> Vec<Block> {
    let mut v = for_shape(h, w);
    v.retain(|&b| b != Block::ZERO);
    v
}

/// Keeps only blocks whose sides are at most `max_block` (the special codes always stay).
pub fn restrict(list: &[Block], max_block: u32) -> Vec<Block> {
    let fits = |b: &Block| match b.kind() {
        BlockKind::Sized { h, w } => h <= max_block && w <= max_block,
        _ => true,
    };
    list.iter().copied().filter(fits).collect()
}

/// `list` plus the `extra` blocks, without duplicates (first occurrence kept, in order); all
/// codes containing a 0 (identity, zero) go last, in the order they appear.
pub fn extend(list: &[Block], extra: &[Block]) -> Vec<Block> {
    let special = |b: &Block| b.0 == 0 || b.1 == 0;
    let mut out: Vec<Block> = Vec::new();
    let all = list.iter().chain(extra);
    for b in all
        .clone()
        .filter(|b| !special(b))
        .chain(all.filter(|b| special(b)))
    {
        if !out.contains(b) {
            out.push(*b);
        }
    }
    out
}
