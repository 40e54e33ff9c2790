//! The candidate lists have the lengths and entries seed-spec §3.4 states.

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
        // "All block sizes in the lists are < 255"
        assert!(l.iter().all(|b| b.0 <= 512 && b.1 <= 512));
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
    let r = restrict(&for_shape(14, 14), 4);
    assert!(r.iter().all(|b| b.0 <= 4 && b.1 <= 4));
    let e = extend(&r, &[Block(13, 1), Block(2, 2)]);
    assert_eq!(e.len(), r.len() + 1);
    assert_eq!(e[e.len() - 3], Block(13, 1));
}
