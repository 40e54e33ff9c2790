//! Property tests: every decoder round-trips what its encoder writes, and no input — random,
//! truncated, bit-flipped, or re-hashed after mutation so validation itself is reached —
//! makes it panic or allocate without bound.

use ksnn_formats::envelope::{self, HEADER_LEN, Magic};
use ksnn_formats::example::random_program;
use ksnn_formats::frame::{DEFAULT_MAX_PAYLOAD, FrameHeader};
use ksnn_formats::*;
use proptest::prelude::*;

/// Re-seals a mutated body under a correct hash, so the decoder gets past the hash check.
fn reseal(magic: Magic, file: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = file[..HEADER_LEN].to_vec();
    out[0..8].copy_from_slice(&magic.bytes());
    out[12..20].copy_from_slice(&(body.len() as u64).to_le_bytes());
    out[20..52].copy_from_slice(&ContentHash::of(body).0);
    out.extend_from_slice(body);
    out
}

fn decode_all(bytes: &[u8]) {
    let _ = Program::decode(bytes);
    let _ = Weights::decode(bytes);
    let _ = BlockSpec::decode(bytes);
    let _ = FrameHeader::decode(bytes, DEFAULT_MAX_PAYLOAD);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = BlockSpec::from_json(text);
        let _ = Report::from_json(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_round_trip(seed in any::<u64>(), n in 1u32..16) {
        let (program, weights) = random_program(seed, n);
        let bytes = program.encode();
        let decoded = Program::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &program);
        let w = Weights::decode(&weights.encode()).unwrap();
        prop_assert_eq!(&w, &weights);
        w.check_against(&decoded).unwrap();
        let spec = program.block_spec();
        prop_assert_eq!(BlockSpec::from_json(&spec.to_json()).unwrap(), spec.clone());
        prop_assert_eq!(BlockSpec::decode(&spec.encode()).unwrap(), spec);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        for magic in [Magic::Program, Magic::Weights, Magic::Spec] {
            decode_all(&reseal(magic, &[0; HEADER_LEN], &body));
        }
    }

    #[test]
    fn truncated_files_are_errors(seed in any::<u64>(), cut in any::<prop::sample::Index>()) {
        let (program, weights) = random_program(seed, 8);
        for bytes in [program.encode(), weights.encode(), program.block_spec().encode()] {
            let at = cut.index(bytes.len());
            let short = &bytes[..at];
            prop_assert!(Program::decode(short).is_err());
            prop_assert!(Weights::decode(short).is_err());
            prop_assert!(BlockSpec::decode(short).is_err());
        }
    }

    #[test]
    fn bit_flips_are_caught(seed in any::<u64>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (program, weights) = random_program(seed, 8);
        for bytes in [program.encode(), weights.encode()] {
            let mut flipped = bytes.clone();
            let i = at.index(flipped.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(Program::decode(&flipped).is_err());
            prop_assert!(Weights::decode(&flipped).is_err());
        }
    }

    /// Flips inside the body with the hash fixed up: the decoder and the validator see a
    /// well-formed but semantically wrong file. They may accept it only if it is valid.
    #[test]
    fn resealed_mutations_validate_or_fail_cleanly(
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let (program, weights) = random_program(seed, 10);
        for (magic, bytes) in [(Magic::Program, program.encode()), (Magic::Weights, weights.encode())] {
            let mut body = bytes[HEADER_LEN..].to_vec();
            for (at, v) in &flips {
                let i = at.index(body.len());
                body[i] = *v;
            }
            let file = reseal(magic, &bytes, &body);
            if let Ok(p) = Program::decode(&file) {
                prop_assert!(p.validate().is_ok());
                prop_assert!(p.costs().is_ok());
            }
            if let Ok(w) = Weights::decode(&file) {
                prop_assert!(w.validate().is_ok());
                let _ = w.check_against(&program);
            }
        }
    }

    #[test]
    fn frame_headers_round_trip(session in any::<u64>(), depth in any::<u32>(),
                                kind in 1u8..=5, more in any::<bool>(), len in 0u32..=DEFAULT_MAX_PAYLOAD) {
        let h = FrameHeader { session, depth, kind: FrameKind::from_u8(kind).unwrap(), more, len };
        prop_assert_eq!(FrameHeader::decode(&h.encode(), DEFAULT_MAX_PAYLOAD), Ok(h));
    }
}

/// A body that claims a vector of 2^62 elements fails fast instead of reserving memory.
#[test]
fn huge_claimed_lengths_do_not_allocate() {
    let (program, weights) = random_program(7, 4);
    // Weights body: program hash (32 bytes), frac_bits, then the tensor count as a varint.
    let mut body = postcard::to_allocvec(&weights.program_hash).unwrap();
    body.push(12);
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]);
    let file = reseal(Magic::Weights, &weights.encode(), &body);
    let started = std::time::Instant::now();
    assert!(Weights::decode(&file).is_err());
    assert!(started.elapsed().as_secs() < 5);
    // Same for a program's layer list.
    let mut body = postcard::to_allocvec(&program.name).unwrap();
    body.extend_from_slice(&[64, 12, 1, 28, 28]);
    body.extend_from_slice(&[0xff; 9]);
    let file = reseal(Magic::Program, &program.encode(), &body);
    assert!(Program::decode(&file).is_err());
    let _ = envelope::header_hash(&file);
}
