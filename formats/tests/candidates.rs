//! The candidate lists have the lengths and entries docs/original.md §3.4 states.

use ksnn_formats::candidates::{SIZES, extend, for_shape, options, restrict, seed_list};
use ksnn_formats::spec::Block;

#[test]
fn lengths_and_ends() {
    let lengths = [
        3, 6, 9, 25, 25, 75, 78, 80, 80, 100, 101, 101, 102, 103, 103, 104,
    ];
    for (&size, &n) in SIZES.iter().zip(&lengths) {
        let l = seed_list(size).unwrap();
        assert_eq!(l.len(), n, "list {size}");
        assert_eq!(&l[n - 2..], [Block::IDENTITY, Block::ZERO], "list {size}");
        assert_eq!(l[0], Block::RELU);
        // Blocks never exceed the list's size (§3.4 says "< 255", but the 256/320/512 lists
        // hold 256x256 and 512x512), except the original's 4x15 in the 14 list.
        let over: Vec<Block> = l
            .iter()
            .copied()
            .filter(|b| u32::from(b.0.max(b.1)) > size)
            .collect();
        let expected: &[Block] = if size == 14 { &[Block(4, 15)] } else { &[] };
        assert_eq!(over, expected, "list {size}");
    }
    assert!(seed_list(5).is_none());
}

#[test]
fn derived_lists_follow_the_rules() {
    let l8 = seed_list(8).unwrap();
    assert!(l8.contains(&Block(8, 8)) && l8.contains(&Block(2, 8)) && !l8.contains(&Block(7, 7)));
    let l28 = seed_list(28).unwrap();
    let at = |b: Block| l28.iter().position(|&x| x == b).unwrap();
    assert_eq!(at(Block(6, 7)), at(Block(6, 6)) + 1);
    assert_eq!(at(Block(7, 6)), at(Block(6, 6)) + 2);
    assert_eq!(at(Block(12, 12)) + 1, at(Block(14, 14)));
    assert_eq!(
        &l28[l28.len() - 4..],
        [Block(21, 21), Block(28, 28), Block::IDENTITY, Block::ZERO]
    );
    assert_eq!(
        l28.iter().filter(|&&b| b == Block(7, 7)).count(),
        2,
        "7x7 twice"
    );
    let l32 = seed_list(32).unwrap();
    assert_eq!(&l32[76..78], [Block(24, 24), Block(32, 32)]);
    assert_eq!(seed_list(256), seed_list(320));
    assert_eq!(
        seed_list(512).unwrap()[99..102],
        [Block(128, 128), Block(256, 256), Block(512, 512)]
    );
    assert_eq!(seed_list(112).unwrap()[98], Block(112, 112));
}

#[test]
fn real_shapes() {
    // 7×7: the 7 list without duplicates and without the zero code.
    let o = options(7, 7);
    assert_eq!(o.len(), 24);
    assert!(!o.contains(&Block::ZERO) && o.contains(&Block::IDENTITY));
    // A non-square 10×5 map uses the 14 list, cut to blocks that fit.
    let l = for_shape(10, 5);
    assert!(
        l.iter()
            .all(|b| b.0 == 0 || b.1 == 0 || (b.0 <= 10 && b.1 <= 5))
    );
    assert!(l.contains(&Block(10, 5)) && !l.contains(&Block(5, 10)));
    // Dedup: the 14 list has 7x7 twice.
    assert_eq!(
        for_shape(14, 14)
            .iter()
            .filter(|&&b| b == Block(7, 7))
            .count(),
        1
    );
    let r = restrict(&for_shape(14, 14), 4_u32);
    assert!(r.iter().all(|b| b.0 <= 4 && b.1 <= 4));
    let e = extend(&r, &[Block(13, 1), Block(2, 2)]);
    assert_eq!(e.len(), r.len() + 1);
    assert_eq!(e[e.len() - 3], Block(13, 1));
    assert_eq!(&e[e.len() - 2..], [Block::IDENTITY, Block::ZERO]);
    // Dedup within the list itself too, specials last.
    let d = extend(
        &[Block(0, 1), Block(2, 2), Block(2, 2), Block(1, 0)],
        &[Block(0, 1), Block(3, 3), Block(2, 2)],
    );
    assert_eq!(d, [Block(2, 2), Block(3, 3), Block::IDENTITY, Block::ZERO]);
}

#[test]
fn exact_entries() {
    let at = |size: u32, i: usize| seed_list(size).unwrap()[i];
    // 7: "... 2x3 3x2 1x7 2x4 ..."
    assert_eq!(at(7, 10), Block(1, 7));
    assert_eq!(at(8, 10), Block(1, 8));
    assert_eq!(at(8, 22), Block(8, 8));
    // 14: 3x12 6x6 12x4 7x7 at 45..49; the second 7x7 at 57; 4x15 at 51.
    let l14 = seed_list(14).unwrap();
    assert_eq!(
        &l14[45..49],
        [Block(3, 12), Block(6, 6), Block(12, 4), Block(7, 7)]
    );
    assert_eq!(l14[57], Block(7, 7));
    assert_eq!(l14[51], Block(4, 15));
    assert_eq!(l14[72], Block(14, 14));
    // 16: "3x12 6x6 6x8 8x6 12x4 7x7" and the tail "12x12 16x16".
    let l16 = seed_list(16).unwrap();
    assert_eq!(
        &l16[45..51],
        [
            Block(3, 12),
            Block(6, 6),
            Block(6, 8),
            Block(8, 6),
            Block(12, 4),
            Block(7, 7)
        ]
    );
    assert_eq!(&l16[74..76], [Block(12, 12), Block(16, 16)]);
    // 28: 6x7 7x6 after 6x6 (index 46), 12x12 then 14x14 then 21x21 28x28.
    let l28 = seed_list(28).unwrap();
    assert_eq!(&l28[46..49], [Block(6, 6), Block(6, 7), Block(7, 6)]);
    assert_eq!(
        &l28[74..78],
        [Block(12, 12), Block(14, 14), Block(21, 21), Block(28, 28)]
    );
    // 56: duplicated 8x14 14x8 and 12x14 14x12, then 14x14 28x28 56x56.
    let l56 = seed_list(56).unwrap();
    assert_eq!(
        &l56[82..86],
        [Block(8, 14), Block(14, 8), Block(11, 11), Block(8, 14)]
    );
    assert_eq!(&l56[90..93], [Block(12, 14), Block(14, 12), Block(13, 13)]);
    assert_eq!(&l56[93..95], [Block(12, 14), Block(14, 12)]);
    assert_eq!(&l56[95..98], [Block(14, 14), Block(28, 28), Block(56, 56)]);
    // 64: "2x16 4x8 8x4 16x2" at 43..47, tail "16x16 32x32 64x64".
    let l64 = seed_list(64).unwrap();
    assert_eq!(
        &l64[43..47],
        [Block(2, 16), Block(4, 8), Block(8, 4), Block(16, 2)]
    );
    assert_eq!(&l64[96..99], [Block(16, 16), Block(32, 32), Block(64, 64)]);
    assert_eq!(at(128, 99), Block(128, 128));
    assert_eq!(at(256, 100), Block(256, 256));
    // Derived lists are their base list plus the appended entries.
    assert_eq!(seed_list(112).unwrap()[..98], l56[..98]);
    assert_eq!(seed_list(512).unwrap()[..99], l64[..99]);
    assert_eq!(seed_list(32).unwrap()[..76], l16[..76]);
}

#[test]
fn every_option_fits_its_map() {
    for (h, w) in [
        (1, 1),
        (3, 5),
        (7, 7),
        (8, 8),
        (10, 5),
        (28, 28),
        (33, 17),
        (600, 480),
    ] {
        let l = for_shape(h, w);
        assert_eq!(&l[l.len() - 2..], [Block::IDENTITY, Block::ZERO]);
        for (i, b) in l.iter().enumerate() {
            assert!(b.check(0, h, w).is_ok(), "{b} on {h}x{w}");
            assert!(!l[..i].contains(b), "{b} repeated");
        }
        let o = options(h, w);
        assert_eq!(o.len(), l.len() - 1);
        assert!(o.iter().all(|b| b.drelus(h, w) <= u64::from(h * w)));
    }
    // Beyond 512 the 512 list is used; 33 picks the 56 list.
    assert!(for_shape(600, 520).contains(&Block(512, 512)));
    assert!(for_shape(33, 17).contains(&Block(7, 14)));
    // The 14 list's 4x15 is wider than a 14x14 map: dropped.
    assert!(!for_shape(14, 14).contains(&Block(4, 15)));
    assert!(for_shape(15, 15).contains(&Block(4, 15)));
    assert!(!for_shape(33, 17).contains(&Block(24, 24)));
}
