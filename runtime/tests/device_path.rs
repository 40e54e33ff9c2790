//! The protocols' device path end to end, where no GPU exists: an emulated device (the CUDA
//! kernels' index arithmetic on the CPU, `backend::emulated`) installed for the process, the
//! three parties in one process, one session of several inferences. The secure outputs must
//! equal the cleartext reference bit for bit; the session's coefficients must go to the
//! device once (P1's `W`, P2's `B`), not with each product; and a product whose device call
//! fails must be recomputed on the CPU without changing the answer.

use std::sync::atomic::Ordering;

use ksnn_formats::example::{tiny_cnn, with_weights};
use ksnn_formats::{DreluProtocol, Truncation};
use ksnn_runtime::backend::{self, emulated::Emulated};
use ksnn_runtime::exec::local::{LocalOptions, run_three};
use ksnn_runtime::exec::model::Model;
use ksnn_runtime::kernels::bilinear::Bilinear;
use ksnn_runtime::prf::Keys;
use ksnn_runtime::reference;
use ksnn_runtime::testing::random_input as input_for;

#[test]
fn three_parties_on_the_emulated_device_equal_the_reference() {
    // The fifth product fails on the device: the CPU must take over for it.
    let device: &'static Emulated = Box::leak(Box::new(Emulated {
        fail_product: 5,
        ..Default::default()
    }));
    assert!(backend::install_device(device), "the only device installed");
    let (mut program, _) = tiny_cnn(3);
    program.protocol.drelu = DreluProtocol::Fss;
    program.protocol.truncation = Truncation::HelperExact;
    program.protocol.approx.k = 0;
    let (program, weights) = with_weights(program, 3, 0.5);
    let model = Model::new(&program, Some(&weights)).unwrap();
    let inputs: Vec<Vec<u64>> = (1..=3).map(|s| input_for(&program, s)).collect();
    let runs = run_three(
        &program,
        &weights,
        &inputs,
        Keys::random_triple(),
        &LocalOptions::default(),
    )
    .expect("the three parties run");
    for (i, x) in inputs.iter().enumerate() {
        assert_eq!(
            runs[0].inferences[i].outputs,
            reference::run(&model, x),
            "inference {i}"
        );
    }
    let on_device = model
        .steps
        .iter()
        .filter(|s| s.linear_map().is_some_and(|m| m.conv().is_some()))
        .count();
    assert!(
        on_device >= 3,
        "tiny_cnn has convolutions and a dense layer"
    );
    let n = inputs.len();
    assert_eq!(
        device.kept.load(Ordering::Relaxed),
        2 * on_device,
        "W (P1) and B (P2) of each layer, once for the session"
    );
    // Per inference and layer: P2's A⊛B offline, P0's A⊛F offline, P1's E⊛W online.
    assert_eq!(device.products.load(Ordering::Relaxed), 3 * on_device * n);
    assert_eq!(
        device.from_resident.load(Ordering::Relaxed),
        2 * on_device * n,
        "P1's and P2's products use the resident coefficients; P0's F travels"
    );
}
