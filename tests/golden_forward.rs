//! Full-size forward pass (nf 64, nz 256) against PyTorch: `pad_forward_full`.

mod common;

use common::*;
use ndarray::Ix4;
use padsim::cortex::Activity;

#[test]
fn full_size_encoder_and_generator_match_pytorch() {
    let set = "pad_forward_full";
    let mut cortex = cortex_from(set, "init");
    let x = load(set, "inputs/x").into_dimensionality::<Ix4>().unwrap();
    let percept = cortex.feedforward.forward(&Activity::from_nchw(x.view()));
    let x_rec = cortex.feedback.forward(percept.z.view()).to_nchw();

    let (atol, rtol) = (1e-5, 1e-4);
    let z = load(set, "outputs/z");
    assert_eq!(percept.z.shape(), z.shape());
    assert_close(
        "z",
        percept.z.as_slice().unwrap(),
        z.as_slice().unwrap(),
        atol,
        rtol,
    );
    let d = load(set, "outputs/d");
    assert_close(
        "d",
        percept.d.as_slice().unwrap(),
        d.as_slice().unwrap(),
        atol,
        rtol,
    );
    let golden_rec = load(set, "outputs/x_rec");
    assert_eq!(x_rec.shape(), golden_rec.shape());
    assert_close(
        "x_rec",
        x_rec.as_slice().unwrap(),
        golden_rec.as_slice().unwrap(),
        atol,
        rtol,
    );
}

#[test]
fn a_misread_kernel_layout_is_caught() {
    // The tolerance must have teeth: flipping tconv4's kernel spatially must fail it.
    let set = "pad_forward_full";
    let mut cortex = cortex_from(set, "init");
    let w = &mut cortex.feedback.pathway.areas[3].weight.value;
    w.invert_axis(ndarray::Axis(2));
    *w = w.as_standard_layout().into_owned();
    let x = load(set, "inputs/x").into_dimensionality::<Ix4>().unwrap();
    let percept = cortex.feedforward.forward(&Activity::from_nchw(x.view()));
    let x_rec = cortex.feedback.forward(percept.z.view()).to_nchw();
    let golden = load(set, "outputs/x_rec");
    let result = std::panic::catch_unwind(|| {
        assert_close(
            "x_rec",
            x_rec.as_slice().unwrap(),
            golden.as_slice().unwrap(),
            1e-5,
            1e-4,
        )
    });
    assert!(
        result.is_err(),
        "a flipped kernel passed the golden comparison"
    );
}
